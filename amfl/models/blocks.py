"""Convolution blocks shared by the U-shaped networks (NestedUNet now, the UNet baselines later)."""

from torch import nn


class ConvBlock(nn.Sequential):
    """Two Conv3x3(bias) -> BatchNorm -> ReLU layers: the node N(.) of eq. 1 in the AMFL paper.

    Padding 1 and stride 1 keep the feature map's height and width, so only pooling and
    upsampling change the resolution. The first convolution maps ``in_channels`` to
    ``out_channels`` (the paper's middle channels M_ij equal O_ij = f(i)).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
