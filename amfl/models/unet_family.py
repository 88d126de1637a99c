"""UNet, R2UNet, AttUNet and R2AttUNet: the U-shaped baselines of Section II.D.

Built as the widely used reference implementation builds them (LeeJunHyun/Image_Segmentation,
``network.py``), whose sizes Table IV reports: five levels with f = base_width * (1, 2, 4, 8,
16) channels, 2x2 max-pooling down, and up-steps made of 2x nearest-neighbour upsampling
followed by Conv3x3-BN-ReLU (``UpConv``) before the skip concatenation. The four networks
differ only in two choices, so one class builds all of them:

- the node block: two Conv3x3-BN-ReLU (``ConvBlock``, UNet / AttUNet) or a recurrent
  residual block (``RecurrentResidualBlock``, R2UNet / R2AttUNet, Alom et al. 2018);
- whether an additive attention gate (``AttentionGate``, Oktay et al. 2018) weights each
  skip connection by the decoder's coarser features before the concatenation.
"""

from typing import ClassVar

import torch
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel
from amfl.models.blocks import ConvBlock

#: Resolution levels; the encoder halves the size LEVELS - 1 times.
LEVELS = 5


class UpConv(nn.Sequential):
    """2x nearest upsampling -> Conv3x3(bias) -> BN -> ReLU: the decoder's up-step."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class RecurrentConv(nn.Module):
    """One Conv3x3-BN-ReLU applied ``steps`` + 1 times with shared weights, each time to the
    block input plus the previous output: x1 = f(x), then x1 = f(x + x1) ``steps`` times
    (the reference's ``Recurrent_block`` with t = steps)."""

    def __init__(self, channels: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=True),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        for _ in range(self.steps):
            out = self.conv(x + out)
        return out


class RecurrentResidualBlock(nn.Module):
    """R2U-Net's RRCNN block: 1x1 conv to the output width, two recurrent convolutions, and
    a residual sum around them."""

    def __init__(self, in_channels: int, out_channels: int, steps: int = 2) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.recurrent = nn.Sequential(
            RecurrentConv(out_channels, steps), RecurrentConv(out_channels, steps)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.project(x)
        return x + self.recurrent(x)


class AttentionGate(nn.Module):
    """Additive attention gate: skip features x are scaled per pixel by
    sigmoid(BN(psi(ReLU(BN(W_g g) + BN(W_x x))))), where g are the decoder's upsampled
    features at the same resolution; the intermediate width is half the skip width."""

    def __init__(self, gate_channels: int, skip_channels: int, inner_channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Conv2d(gate_channels, inner_channels, 1), nn.BatchNorm2d(inner_channels)
        )
        self.skip = nn.Sequential(
            nn.Conv2d(skip_channels, inner_channels, 1), nn.BatchNorm2d(inner_channels)
        )
        self.psi = nn.Sequential(nn.Conv2d(inner_channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, gate: Tensor, skip: Tensor) -> Tensor:
        return skip * self.psi(self.relu(self.gate(gate) + self.skip(skip)))


class _UShapedNet(SegmentationModel):
    """Shared encoder-decoder of the four networks; subclasses pick the block and the gate."""

    input_divisor: ClassVar[int] = 2 ** (LEVELS - 1)
    #: Whether skip connections pass through an AttentionGate.
    attention: ClassVar[bool] = False

    def _build(self, base_width: int, in_channels: int, num_classes: int) -> None:
        self.base_width = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        widths = [base_width * 2**level for level in range(LEVELS)]
        inputs = [in_channels, *widths[:-1]]
        self.encoder = nn.ModuleList(self._node(inputs[i], widths[i]) for i in range(LEVELS))
        # Decoder step k goes from level k + 1 up to level k (k = LEVELS - 2 .. 0).
        self.up = nn.ModuleList(UpConv(widths[k + 1], widths[k]) for k in range(LEVELS - 1))
        self.decoder = nn.ModuleList(
            self._node(2 * widths[k], widths[k]) for k in range(LEVELS - 1)
        )
        if self.attention:
            self.gates = nn.ModuleList(
                AttentionGate(widths[k], widths[k], max(widths[k] // 2, 1))
                for k in range(LEVELS - 1)
            )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def _node(self, in_channels: int, out_channels: int) -> nn.Module:
        return ConvBlock(in_channels, out_channels)

    def compute_logits(self, images: Tensor) -> Tensor:
        skips = [self.encoder[0](images)]
        for level in range(1, LEVELS):
            skips.append(self.encoder[level](self.pool(skips[-1])))
        x = skips.pop()
        for k in reversed(range(LEVELS - 1)):
            up = self.up[k](x)
            skip = self.gates[k](up, skips[k]) if self.attention else skips[k]
            x = self.decoder[k](torch.cat([skip, up], dim=1))
        return self.head(x)


_SHAPE_DOC = """
    Args:
        base_width: channels of the full-resolution level (64 in the reference and Table IV);
            level i has base_width * 2**i.
        in_channels: image channels (1: a grey-level image scaled to 0..1).
        num_classes: output classes (4: background, chromosome 1, chromosome 2, overlap).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 16.
"""


class UNet(_UShapedNet):
    __doc__ = (
        """U-Net (Ronneberger et al., MICCAI 2015) as the reference builds it, with batch norm
    and padded convolutions: 34.53 M parameters at base_width 64 (Table IV).
    """
        + _SHAPE_DOC
    )

    card_summary: ClassVar[str] = (
        "U-Net baseline (Ronneberger et al. 2015) of the AMFL paper's comparison, five levels "
        "with batch norm. It returns logits; `model.predict(images)` returns probabilities."
    )

    def __init__(self, base_width: int = 64, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        require_positive_ints(
            type(self).__name__,
            base_width=base_width,
            in_channels=in_channels,
            num_classes=num_classes,
        )
        self._build(base_width, in_channels, num_classes)


class AttUNet(UNet):
    __doc__ = (
        """Attention U-Net (Oktay et al., MIDL 2018): U-Net whose skip connections pass through
    additive attention gates; 34.88 M parameters at base_width 64 (Table IV).
    """
        + _SHAPE_DOC
    )

    attention: ClassVar[bool] = True
    card_summary: ClassVar[str] = (
        "Attention U-Net baseline (Oktay et al. 2018) of the AMFL paper's comparison: U-Net "
        "with attention-gated skip connections. It returns logits; `model.predict(images)` "
        "returns probabilities."
    )


class R2UNet(_UShapedNet):
    __doc__ = (
        """R2U-Net (Alom et al., 2018): U-Net with recurrent residual blocks (t = ``recurrence``
    shared-weight passes) in place of the double convolutions; 39.09 M parameters at
    base_width 64 (Table IV).
    """
        + _SHAPE_DOC
        + """
    recurrence: t, the extra passes of each recurrent convolution (2 in the reference).
    """
    )

    card_summary: ClassVar[str] = (
        "R2U-Net baseline (Alom et al. 2018) of the AMFL paper's comparison: U-Net with "
        "recurrent residual convolution blocks. It returns logits; `model.predict(images)` "
        "returns probabilities."
    )

    def __init__(
        self, base_width: int = 64, in_channels: int = 1, num_classes: int = 4, recurrence: int = 2
    ) -> None:
        super().__init__()
        require_positive_ints(
            type(self).__name__,
            base_width=base_width,
            in_channels=in_channels,
            num_classes=num_classes,
            recurrence=recurrence,
        )
        self.recurrence = recurrence
        self._build(base_width, in_channels, num_classes)

    def _node(self, in_channels: int, out_channels: int) -> nn.Module:
        return RecurrentResidualBlock(in_channels, out_channels, self.recurrence)


class R2AttUNet(R2UNet):
    __doc__ = (
        """R2AttU-Net: R2U-Net with the attention-gated skip connections of Attention U-Net;
    39.44 M parameters at base_width 64 (Table IV).
    """
        + _SHAPE_DOC
        + """
    recurrence: t, the extra passes of each recurrent convolution (2 in the reference).
    """
    )

    attention: ClassVar[bool] = True
    card_summary: ClassVar[str] = (
        "R2AttU-Net baseline of the AMFL paper's comparison: recurrent residual U-Net with "
        "attention-gated skip connections. It returns logits; `model.predict(images)` "
        "returns probabilities."
    )
