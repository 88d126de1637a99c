"""PatchGAN discriminator of the AMFL cGAN (Section II.A; Isola et al., CVPR 2017)."""

from typing import ClassVar

import torch
from torch import Tensor, nn

from amfl.models.hub_mixin import AmflHubMixin
from amfl.models.arguments import require_positive_ints

KERNEL_SIZE = 4
PADDING = 2
STRIDES = (2, 2, 2, 1, 1)
LEAKY_SLOPE = 0.2
#: Standard deviation of the N(0, std) weight initialisation of pix2pix / DCGAN.
INIT_STD = 0.02


class PatchDiscriminator(nn.Module, AmflHubMixin):
    """Scores each receptive-field patch of an (image, segmentation) pair as real (1) or fake (0).

    The input concatenates the image with a segmentation map (softmax of the generator, or
    the one-hot truth), so D judges whether the labels fit the image. Five 4x4 convolutions,
    padding 2, with base_width * (1, 2, 4, 8) and 1 output channels and strides
    (2, 2, 2, 1, 1); LeakyReLU(0.2) after all but the last; BatchNorm after the three middle
    ones (whose convolutions then carry no bias, BN's shift replaces it); sigmoid at the end.
    The paper's text reads "first four ... stride 2, last two ... stride 1" for five layers;
    we follow the pix2pix 3-layer PatchGAN it cites: three stride-2 layers, two stride-1.

    Build it with ``create_discriminator``, which applies the N(0, 0.02) initialisation.

    Args:
        image_channels: channels of the image (1, grey level).
        num_classes: channels of the segmentation map (4 classes).
        base_width: channels of the first convolution (paper: 64).

    Shape: image (N, image_channels, H, W) and segmentation (N, num_classes, H, W) -> patch
    scores (N, 1, h, w) in (0, 1); h = w = 19 for 128 x 128 inputs.
    """

    card_summary: ClassVar[str] = (
        "PatchGAN discriminator of AMFL, used only during training: it scores patches of an "
        "(image, segmentation) pair as real (ground truth) or generated."
    )

    def __init__(self, image_channels: int = 1, num_classes: int = 4, base_width: int = 64) -> None:
        super().__init__()
        require_positive_ints(
            "PatchDiscriminator",
            image_channels=image_channels,
            num_classes=num_classes,
            base_width=base_width,
        )
        self.image_channels = image_channels
        self.num_classes = num_classes
        channels = [image_channels + num_classes, *(base_width * 2**i for i in range(4)), 1]
        layers: list[nn.Module] = []
        last = len(STRIDES) - 1
        for index, stride in enumerate(STRIDES):
            normalised = 0 < index < last
            layers.append(
                nn.Conv2d(
                    channels[index],
                    channels[index + 1],
                    kernel_size=KERNEL_SIZE,
                    stride=stride,
                    padding=PADDING,
                    bias=not normalised,
                )
            )
            if normalised:
                layers.append(nn.BatchNorm2d(channels[index + 1]))
            layers.append(nn.Sigmoid() if index == last else nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: Tensor, segmentation: Tensor) -> Tensor:
        expected = (image.shape[0], self.num_classes, *image.shape[2:])
        if image.ndim != 4 or image.shape[1] != self.image_channels or segmentation.shape != expected:
            raise ValueError(
                f"PatchDiscriminator expects image (N, {self.image_channels}, H, W) and "
                f"segmentation (N, {self.num_classes}, H, W); got {tuple(image.shape)} and "
                f"{tuple(segmentation.shape)}"
            )
        return self.layers(torch.cat([image, segmentation], dim=1))


def create_discriminator(
    image_channels: int = 1, num_classes: int = 4, base_width: int = 64
) -> PatchDiscriminator:
    """A PatchDiscriminator with the N(0, 0.02) initialisation of pix2pix, ready to train.

    Initialisation is training policy, so it lives here, not in the module (as in pix2pix's
    define_D): ``from_pretrained`` builds the bare module and loads saved weights into it.
    """
    discriminator = PatchDiscriminator(image_channels, num_classes, base_width)
    discriminator.apply(_initialise_gan_weights)
    return discriminator


def _initialise_gan_weights(module: nn.Module) -> None:
    """Convolutions N(0, 0.02) with zero bias; BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, INIT_STD)
        nn.init.zeros_(module.bias)
