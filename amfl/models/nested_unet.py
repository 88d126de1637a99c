"""NestedUNet (UNet++; Zhou et al., IEEE TMI 2020), the AMFL generator of Section II.A."""

from typing import ClassVar

import torch
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel
from amfl.models.blocks import ConvBlock

#: Resolution levels i = 0..4; the encoder halves the size four times.
LEVELS = 5


def node_name(level: int, column: int) -> str:
    """Module name of node X^{i,j} of eq. 1 (i = level, j = column)."""
    return f"x{level}_{column}"


class NestedUNet(SegmentationModel):
    """UNet++ with five levels and dense skip connections (eq. 1-2 of the AMFL paper).

    Level i has f(i) = base_width * 2**i channels. Node x^{i,j} is a ConvBlock applied to:
    the 2x2 max-pooled x^{i-1,0} for j = 0 (the image for i = 0), and for j > 0 the
    concatenation [x^{i,0}, ..., x^{i,j-1}, up(x^{i+1,j-1})], up = 2x bilinear upsampling.
    A 1x1 convolution on x^{0,4} gives the logits.

    Eq. 2 prints the input width of a j > 0 node as f(i)*j + f(i), but the upsampled input
    keeps its f(i+1) channels: the width is f(i)*j + f(i+1), which is what gives Table IV's
    36.63 M parameters at base_width 64 (the printed formula would give 32.50 M).
    Upsampling uses align_corners=True like the UNet++ reference implementation.

    Args:
        base_width: f(0), channels of the full-resolution level (paper: 64).
        in_channels: image channels (1: a grey-level microscope image scaled to 0..1).
        num_classes: output classes (4: background, first chromosome only, second
            chromosome only, overlap).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 16.
    """

    input_divisor: ClassVar[int] = 2 ** (LEVELS - 1)
    card_summary: ClassVar[str] = (
        "NestedUNet (UNet++) segmentation network: the generator of AMFL, five levels with "
        "dense skip connections, trained with the LSGAN adversarial loss plus 10 x "
        "Lovasz-Softmax in the paper. It returns logits; `model.predict(images)` returns "
        "class probabilities."
    )

    def __init__(self, base_width: int = 64, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        require_positive_ints(
            "NestedUNet", base_width=base_width, in_channels=in_channels, num_classes=num_classes
        )
        self.base_width = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        widths = [base_width * 2**level for level in range(LEVELS)]
        nodes = {node_name(0, 0): ConvBlock(in_channels, widths[0])}
        for level in range(1, LEVELS):
            nodes[node_name(level, 0)] = ConvBlock(widths[level - 1], widths[level])
        for column in range(1, LEVELS):
            for level in range(LEVELS - column):
                inputs = widths[level] * column + widths[level + 1]
                nodes[node_name(level, column)] = ConvBlock(inputs, widths[level])
        self.nodes = nn.ModuleDict(nodes)
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def compute_logits(self, images: Tensor) -> Tensor:
        outputs = {(0, 0): self.nodes[node_name(0, 0)](images)}
        for level in range(1, LEVELS):
            pooled = self.pool(outputs[level - 1, 0])
            outputs[level, 0] = self.nodes[node_name(level, 0)](pooled)
        for column in range(1, LEVELS):
            for level in range(LEVELS - column):
                same_level = [outputs[level, earlier] for earlier in range(column)]
                from_below = self.upsample(outputs[level + 1, column - 1])
                node = self.nodes[node_name(level, column)]
                outputs[level, column] = node(torch.cat([*same_level, from_below], dim=1))
        return self.head(outputs[0, LEVELS - 1])
