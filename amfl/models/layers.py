"""Small convolution units shared by the baselines built on a ResNet or a real-time backbone
(DeepLabV3+, FastFCN, BiSeNet V1/V2, ENet); the U-shaped networks use ``blocks.ConvBlock``."""

import torch.nn.functional as F
from torch import Tensor, nn


class ConvBNReLU(nn.Sequential):
    """Conv(no bias) -> BatchNorm -> ReLU, the unit most segmentation references repeat.

    "Same" padding for odd kernels at any dilation, so only ``stride`` changes the size.
    ``relu=False`` leaves the block linear (a projection before a residual sum).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        relu: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=dilation * (kernel_size - 1) // 2,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (dilated) -> BatchNorm -> pointwise 1x1, no bias (as FastFCN's JPU
    and DeepLabV3+'s separable variants): far fewer weights than a full 3x3."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                in_channels,
                3,
                padding=dilation,
                dilation=dilation,
                groups=in_channels,
                bias=False,
            ),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


def resize_to(features: Tensor, reference: Tensor) -> Tensor:
    """Bilinear resize of ``features`` to the height and width of ``reference``."""
    return F.interpolate(features, size=reference.shape[-2:], mode="bilinear", align_corners=False)
