"""DeepLabV3+ (Chen et al., ECCV 2018) on the ResNet encoder: a large baseline of Section II.D."""

from typing import ClassVar

import torch
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel
from amfl.models.layers import ConvBNReLU, resize_to
from amfl.models.resnet import ResNetEncoder

#: Encoder output stride: the last ResNet stage is dilated instead of strided.
OUTPUT_STRIDE = 16
#: Atrous rates of the three 3x3 ASPP branches at output stride 16.
ATROUS_RATES = (6, 12, 18)


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average pool -> 1x1 Conv-BN-ReLU -> broadcast back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, three dilated 3x3 branches and image
    pooling, concatenated and projected by 1x1 Conv-BN-ReLU with dropout 0.5."""

    def __init__(
        self, in_channels: int, out_channels: int, rates: tuple[int, ...] = ATROUS_RATES
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [
                ConvBNReLU(in_channels, out_channels, kernel_size=1),
                *(ConvBNReLU(in_channels, out_channels, dilation=rate) for rate in rates),
                ImagePooling(in_channels, out_channels),
            ]
        )
        self.project = nn.Sequential(
            ConvBNReLU(len(self.branches) * out_channels, out_channels, kernel_size=1),
            nn.Dropout(0.5),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+ with a ResNet encoder at output stride 16, as the widely used PyTorch
    port (jfzhang95/pytorch-deeplab-xception, ResNet backbone) builds it: ASPP (rates 6, 12,
    18, image pooling) on the last stage; a decoder that upsamples it 4x, concatenates
    stage 1's features reduced to ``skip_width`` channels by 1x1 Conv-BN-ReLU, refines with
    two Conv3x3-BN-ReLU (dropout 0.5 and 0.1), classifies by 1x1, and upsamples 4x.

    Parameters: 59.33 M with ResNet-101 (the DeepLabV3+ paper's ResNet), within 0.2 % of
    Table IV's 59.46 M. The encoder is trained from scratch here (no ImageNet weights: the
    images have one channel). The port's multi-grid dilations (1, 2, 4) in the last stage
    are replaced by a constant dilation of 2 (torchvision's layout); the parameter count
    does not change.

    Args:
        backbone_depth: ResNet depth, one of 18, 34, 50, 101, 152 (101).
        base_width: ResNet stem width (64).
        aspp_width: channels of the ASPP branches and the decoder (256).
        skip_width: channels the low-level (stage 1) features are reduced to (48).
        in_channels: image channels (1: grey-level image scaled to 0..1).
        num_classes: output classes (4).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 16.
    Batch norm in the image-pooling branch needs training batches of at least 2 images.
    """

    input_divisor: ClassVar[int] = OUTPUT_STRIDE
    card_summary: ClassVar[str] = (
        "DeepLabV3+ baseline (Chen et al. 2018) of the AMFL paper's comparison: ResNet "
        "encoder with atrous spatial pyramid pooling and a light decoder. It returns logits; "
        "`model.predict(images)` returns probabilities."
    )

    def __init__(
        self,
        backbone_depth: int = 101,
        base_width: int = 64,
        aspp_width: int = 256,
        skip_width: int = 48,
        in_channels: int = 1,
        num_classes: int = 4,
    ) -> None:
        super().__init__()
        require_positive_ints(
            "DeepLabV3Plus",
            base_width=base_width,
            aspp_width=aspp_width,
            skip_width=skip_width,
            in_channels=in_channels,
            num_classes=num_classes,
        )
        self.backbone_depth = backbone_depth
        self.base_width = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.encoder = ResNetEncoder(
            backbone_depth, in_channels, base_width, output_stride=OUTPUT_STRIDE
        )
        low_channels, *_, high_channels = self.encoder.stage_channels
        self.aspp = ASPP(high_channels, aspp_width)
        self.reduce_skip = ConvBNReLU(low_channels, skip_width, kernel_size=1)
        self.decoder = nn.Sequential(
            ConvBNReLU(aspp_width + skip_width, aspp_width),
            nn.Dropout(0.5),
            ConvBNReLU(aspp_width, aspp_width),
            nn.Dropout(0.1),
            nn.Conv2d(aspp_width, num_classes, 1),
        )

    def compute_logits(self, images: Tensor) -> Tensor:
        low, *_, high = self.encoder(images)
        skip = self.reduce_skip(low)
        context = resize_to(self.aspp(high), skip)
        return resize_to(self.decoder(torch.cat([context, skip], dim=1)), images)
