"""ENet (Paszke et al., 2016): the smallest real-time baseline of Section II.D (0.35 M)."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel

#: Bottleneck projection ratio: the branch works at channels / 4.
INTERNAL_RATIO = 4


def _activation(relu: bool) -> nn.Module:
    # ENet uses PReLU in the encoder and ReLU in the decoder.
    return nn.ReLU(inplace=True) if relu else nn.PReLU()


def _conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    relu: bool,
    **conv: int | tuple[int, int],
) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **conv),
        nn.BatchNorm2d(out_channels),
        _activation(relu),
    ]


class InitialBlock(nn.Module):
    """3x3 stride-2 convolution to out - in channels, concatenated with a 2x max-pool of the
    input, then BN and activation: halves the size and widens to ``out_channels`` cheaply."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.norm = nn.Sequential(nn.BatchNorm2d(out_channels), _activation(relu))

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(torch.cat([self.conv(x), self.pool(x)], dim=1))


class RegularBottleneck(nn.Module):
    """Residual bottleneck: 1x1 projection, a 3x3 (dilated) or k x 1 then 1 x k (asymmetric)
    convolution, 1x1 expansion, spatial dropout, then the sum with the input."""

    def __init__(
        self,
        channels: int,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.1,
        relu: bool = False,
    ) -> None:
        super().__init__()
        inner = channels // INTERNAL_RATIO
        if asymmetric:
            middle = _conv_bn_act(inner, inner, (asymmetric, 1), relu, padding=(asymmetric // 2, 0))
            middle += _conv_bn_act(
                inner, inner, (1, asymmetric), relu, padding=(0, asymmetric // 2)
            )
        else:
            middle = _conv_bn_act(inner, inner, 3, relu, padding=dilation, dilation=dilation)
        self.branch = nn.Sequential(
            *_conv_bn_act(channels, inner, 1, relu),
            *middle,
            *_conv_bn_act(inner, channels, 1, relu),
            nn.Dropout2d(dropout),
        )
        self.activation = _activation(relu)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(x + self.branch(x))


class DownsamplingBottleneck(nn.Module):
    """Halves the size: a 2x2 max-pool (indices kept for the decoder's unpooling) zero-padded
    to ``out_channels``, plus a branch of 2x2 stride-2 projection, 3x3, 1x1 expansion."""

    def __init__(
        self, in_channels: int, out_channels: int, dropout: float, relu: bool = False
    ) -> None:
        super().__init__()
        inner = in_channels // INTERNAL_RATIO
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.branch = nn.Sequential(
            *_conv_bn_act(in_channels, inner, 2, relu, stride=2),
            *_conv_bn_act(inner, inner, 3, relu, padding=1),
            *_conv_bn_act(inner, out_channels, 1, relu),
            nn.Dropout2d(dropout),
        )
        self.activation = _activation(relu)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        main, indices = self.pool(x)
        branch = self.branch(x)
        main = F.pad(main, (0, 0, 0, 0, 0, branch.shape[1] - main.shape[1]))
        return self.activation(main + branch), indices


class UpsamplingBottleneck(nn.Module):
    """Doubles the size: 1x1 conv + BN then max-unpooling with the encoder's indices, plus a
    branch of 1x1 projection, 2x2 stride-2 transposed convolution, 1x1 expansion."""

    def __init__(
        self, in_channels: int, out_channels: int, dropout: float, relu: bool = True
    ) -> None:
        super().__init__()
        inner = in_channels // INTERNAL_RATIO
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.unpool = nn.MaxUnpool2d(2)
        self.branch = nn.Sequential(
            *_conv_bn_act(in_channels, inner, 1, relu),
            nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False),
            nn.BatchNorm2d(inner),
            _activation(relu),
            *_conv_bn_act(inner, out_channels, 1, relu),
            nn.Dropout2d(dropout),
        )
        self.activation = _activation(relu)

    def forward(self, x: Tensor, indices: Tensor) -> Tensor:
        main = self.unpool(self.main(x), indices)
        return self.activation(main + self.branch(x))


def _stage_2_or_3(channels: int) -> list[nn.Module]:
    """The eight bottlenecks shared by stages 2 and 3: regular, dilated 2, asymmetric 5,
    dilated 4, regular, dilated 8, asymmetric 5, dilated 16 (PReLU, dropout 0.1)."""
    return [
        RegularBottleneck(channels),
        RegularBottleneck(channels, dilation=2),
        RegularBottleneck(channels, asymmetric=5),
        RegularBottleneck(channels, dilation=4),
        RegularBottleneck(channels),
        RegularBottleneck(channels, dilation=8),
        RegularBottleneck(channels, asymmetric=5),
        RegularBottleneck(channels, dilation=16),
    ]


class ENet(SegmentationModel):
    """ENet (Paszke et al., arXiv 1606.02147), laid out as the paper's Table 1 and the
    widely used PyTorch port (davidtvs/PyTorch-ENet): an initial block, encoder stages 1-3
    (PReLU; spatial dropout 0.01 in stage 1, 0.1 after) with max-pool indices kept, a small
    decoder of unpooling bottlenecks (ReLU), and a 3x3 stride-2 transposed convolution to
    the classes. 0.35 M parameters (Table IV). Each activation has its own PReLU weight (the
    port shares one per bottleneck), a difference of a few dozen parameters.

    Args:
        base_width: channels after the initial block (16); stage 1 has 4x, stages 2-3 8x.
        in_channels: image channels (1: grey-level image scaled to 0..1).
        num_classes: output classes (4).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 8
    (three 2x downsamplings whose max-pool indices must map back exactly).
    """

    input_divisor: ClassVar[int] = 8
    card_summary: ClassVar[str] = (
        "ENet baseline (Paszke et al. 2016) of the AMFL paper's comparison: a 0.35 M-parameter "
        "real-time encoder-decoder. It returns logits; `model.predict(images)` returns "
        "probabilities."
    )

    def __init__(self, base_width: int = 16, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        require_positive_ints(
            "ENet", base_width=base_width, in_channels=in_channels, num_classes=num_classes
        )
        if base_width <= in_channels:
            raise ValueError(
                "ENet needs base_width > in_channels (the initial block's convolution makes "
                "base_width - in_channels maps); got "
                f"base_width={base_width}, in_channels={in_channels}"
            )
        self.base_width = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        w1, w2 = 4 * base_width, 8 * base_width
        self.initial = InitialBlock(in_channels, base_width)
        self.down1 = DownsamplingBottleneck(base_width, w1, dropout=0.01)
        self.stage1 = nn.Sequential(*(RegularBottleneck(w1, dropout=0.01) for _ in range(4)))
        self.down2 = DownsamplingBottleneck(w1, w2, dropout=0.1)
        self.stage2 = nn.Sequential(*_stage_2_or_3(w2))
        self.stage3 = nn.Sequential(*_stage_2_or_3(w2))
        self.up4 = UpsamplingBottleneck(w2, w1, dropout=0.1)
        self.stage4 = nn.Sequential(*(RegularBottleneck(w1, relu=True) for _ in range(2)))
        self.up5 = UpsamplingBottleneck(w1, base_width, dropout=0.1)
        self.stage5 = RegularBottleneck(base_width, relu=True)
        self.head = nn.ConvTranspose2d(
            base_width, num_classes, 3, stride=2, padding=1, output_padding=1, bias=False
        )

    def compute_logits(self, images: Tensor) -> Tensor:
        x, indices1 = self.down1(self.initial(images))
        x, indices2 = self.down2(self.stage1(x))
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2))
        x = self.stage5(self.up5(x, indices1))
        return self.head(x)
