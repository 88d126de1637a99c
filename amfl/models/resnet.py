"""ResNet encoder (He et al., CVPR 2016) shared by DeepLabV3+, FastFCN and BiSeNetV1.

The torchvision layout (7x7 stride-2 stem, 3x3 max-pool, four stages of basic or bottleneck
blocks, projection shortcuts where the shape changes) without the ImageNet classifier, built
here for grey-level images: the baselines are trained from scratch on chromosome images, so
no ImageNet weights (and no torchvision) are involved. ``base_width`` scales every stage so
tests can build a tiny one; ``output_stride`` swaps the last strides for dilation, as
DeepLab does to keep larger feature maps.
"""

from typing import ClassVar

from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints

#: Residual blocks per stage for each depth (He et al., Table 1).
STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
#: Depths built from bottleneck blocks (1x1 -> 3x3 -> 1x1, 4x expansion).
BOTTLENECK_DEPTHS = frozenset({50, 101, 152})
#: Output strides: 32 is the plain ResNet; 16 dilates stage 4, 8 dilates stages 3 and 4.
OUTPUT_STRIDES = (8, 16, 32)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut: ResNet-18/34."""

    expansion: ClassVar[int] = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(
            in_channels, planes, 3, stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, as torchvision's "ResNet v1.5") -> 1x1 expand
    by 4, plus the shortcut: ResNet-50/101/152."""

    expansion: ClassVar[int] = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when the shape is kept, else 1x1 strided projection + BatchNorm."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class ResNetEncoder(nn.Module):
    """ResNet-``depth`` feature extractor returning the outputs of its four stages.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: image channels (1 for the chromosome images).
        base_width: channels of the stem and of stage 1's 3x3 convolutions (64 in ResNet);
            stage k has base_width * 2**(k-1) planes, times 4 at the output of bottlenecks.
        output_stride: 32, 16 or 8: the input-to-stage-4 size ratio. Below 32 the stride-2
            of stage 4 (and stage 3 for 8) becomes a dilation, as in DeepLab; the weights
            and their count do not change.

    Shape: (N, in_channels, H, W) -> four maps at 1/4, 1/8, 1/16, 1/32 of H, W (or the
    dilated sizes), with ``stage_channels`` channels.
    """

    def __init__(
        self, depth: int = 18, in_channels: int = 1, base_width: int = 64, output_stride: int = 32
    ) -> None:
        super().__init__()
        require_positive_ints("ResNetEncoder", in_channels=in_channels, base_width=base_width)
        if depth not in STAGE_BLOCKS:
            raise ValueError(
                f"ResNet depth (backbone_depth) must be one of {sorted(STAGE_BLOCKS)}; got {depth!r}"
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f"output_stride must be one of {OUTPUT_STRIDES}; got {output_stride!r}"
            )
        block = Bottleneck if depth in BOTTLENECK_DEPTHS else BasicBlock
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        # Stage 1 keeps the stem's 1/4; stages 2-4 halve unless dilated for output_stride.
        dilated_stages = {32: 0, 16: 1, 8: 2}[output_stride]
        stages, channels, dilation = [], base_width, 1
        for index, blocks in enumerate(STAGE_BLOCKS[depth]):
            planes = base_width * 2**index
            stride = 1 if index == 0 else 2
            previous_dilation = dilation
            if index >= 4 - dilated_stages:
                stride, dilation = 1, dilation * 2
            # As torchvision: the first block of a newly dilated stage keeps the old dilation.
            layers = [block(channels, planes, stride, previous_dilation)]
            channels = planes * block.expansion
            layers += [block(channels, planes, dilation=dilation) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.stage_channels = tuple(base_width * 2**index * block.expansion for index in range(4))

    def forward(self, images: Tensor) -> list[Tensor]:
        features, x = [], self.stem(images)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
