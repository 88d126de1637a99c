"""BiSeNet V1 and V2: the two-branch real-time baselines of Section II.D.

Both pair a shallow, wide *spatial/detail* branch at 1/8 resolution with a deep, narrow
*context/semantic* branch down to 1/32, and fuse them at 1/8 before an 8x bilinear
upsampling. V1 (Yu et al., ECCV 2018) takes its context from a ResNet-18; V2 (Yu et al.,
IJCV 2021) replaces it with a light semantic branch of gather-and-expand layers.

Batch norm on globally pooled features (V2's context embedding) needs training batches of
at least two images, as in the reference implementations.
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel
from amfl.models.layers import ConvBNReLU, resize_to
from amfl.models.resnet import ResNetEncoder

#: Both networks downsample their context branch 32 times.
CONTEXT_STRIDE = 32


# --- BiSeNet V1 -------------------------------------------------------------------------


class StridedConvBlock(nn.Sequential):
    """Conv3x3(bias) -> BN -> ReLU with stride 2 (1 when ``stride=1``): the V1 spatial path."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class AttentionRefinement(nn.Module):
    """ARM: reweights channels by sigmoid(1x1 conv(global average pool)) of the features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.conv(x.mean(dim=(2, 3), keepdim=True)))


class FeatureFusion(nn.Module):
    """FFM: Conv3x3-BN-ReLU on the concatenated paths, then a squeeze-excitation style
    channel attention (pool -> 1x1 -> ReLU -> 1x1 -> sigmoid) added back: f + f * a."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = StridedConvBlock(in_channels, out_channels, stride=1)
        self.attention = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        features = self.fuse(torch.cat([spatial, context], dim=1))
        return features + features * self.attention(features.mean(dim=(2, 3), keepdim=True))


class BiSeNetV1(SegmentationModel):
    """BiSeNet (Yu et al., ECCV 2018) with a ResNet-18 context path, as the widely used
    PyTorch port (ooooverflow/BiSeNet) builds it, whose size Table IV reports:

    - spatial path: three stride-2 Conv3x3-BN-ReLU (64, 128, 256 channels) to 1/8;
    - context path: ResNet-18 stages 3 and 4 (1/16, 1/32), each through an attention
      refinement module; stage 4 is also scaled by its global average (the "tail"); both
      are upsampled to 1/8 and concatenated;
    - feature fusion module straight to ``num_classes`` channels, 8x bilinear upsampling,
      and a final 1x1 convolution.

    Parameters: 11.91 M at base_width 64. Table IV's 12.43 M is this network plus the
    0.51 M ImageNet classifier (fc 512 -> 1000) that the port keeps inside its torchvision
    ResNet-18 without ever using it; it has no effect on the output and is left out here.
    The port's two auxiliary supervision heads (1x1 convolutions, 3 K parameters) serve
    only its training loss and are left out too. Like the port, the ARM applies no batch
    norm after its 1x1 convolution.

    Args:
        base_width: ResNet-18 stem width (64); the spatial path has 1x, 2x, 4x of it.
        in_channels: image channels (1: grey-level image scaled to 0..1).
        num_classes: output classes (4).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 32.
    """

    input_divisor: ClassVar[int] = CONTEXT_STRIDE
    card_summary: ClassVar[str] = (
        "BiSeNet V1 baseline (Yu et al. 2018) of the AMFL paper's comparison: spatial path "
        "plus a ResNet-18 context path, fused at 1/8 resolution. It returns logits; "
        "`model.predict(images)` returns probabilities."
    )

    def __init__(self, base_width: int = 64, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        require_positive_ints(
            "BiSeNetV1", base_width=base_width, in_channels=in_channels, num_classes=num_classes
        )
        self.base_width = base_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.spatial_path = nn.Sequential(
            StridedConvBlock(in_channels, base_width),
            StridedConvBlock(base_width, 2 * base_width),
            StridedConvBlock(2 * base_width, 4 * base_width),
        )
        self.context_path = ResNetEncoder(18, in_channels, base_width)
        channels16, channels32 = self.context_path.stage_channels[2:]
        self.refine16 = AttentionRefinement(channels16)
        self.refine32 = AttentionRefinement(channels32)
        self.fusion = FeatureFusion(4 * base_width + channels16 + channels32, num_classes)
        self.head = nn.Conv2d(num_classes, num_classes, 1)

    def compute_logits(self, images: Tensor) -> Tensor:
        spatial = self.spatial_path(images)
        _, _, context16, context32 = self.context_path(images)
        context16 = self.refine16(context16)
        context32 = self.refine32(context32) * context32.mean(dim=(2, 3), keepdim=True)
        context = torch.cat([resize_to(context16, spatial), resize_to(context32, spatial)], dim=1)
        fused = self.fusion(spatial, context)
        return self.head(resize_to(fused, images))


# --- BiSeNet V2 -------------------------------------------------------------------------


def _depthwise(channels: int, out_channels: int | None = None, stride: int = 1) -> list[nn.Module]:
    """Depthwise 3x3 (``out_channels`` a multiple of ``channels`` expands) + BN."""
    out_channels = out_channels or channels
    return [
        nn.Conv2d(channels, out_channels, 3, stride=stride, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


class StemBlock(nn.Module):
    """Semantic-branch stem to 1/4: stride-2 conv, then a strided conv pair beside a
    max-pool, concatenated and fused."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, channels, stride=2)
        self.left = nn.Sequential(
            ConvBNReLU(channels, channels // 2, kernel_size=1),
            ConvBNReLU(channels // 2, channels, stride=2),
        )
        self.right = nn.MaxPool2d(3, stride=2, padding=1)
        self.fuse = ConvBNReLU(2 * channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class GatherExpand(nn.Module):
    """Gather-and-expand layer: 3x3 conv, depthwise 3x3 expanding ``expansion`` times
    (stride 2 adds a second depthwise conv and a depthwise-separable shortcut), 1x1
    projection, residual sum, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 6
    ) -> None:
        super().__init__()
        middle = in_channels * expansion
        layers: list[nn.Module] = [
            ConvBNReLU(in_channels, in_channels),
            *_depthwise(in_channels, middle, stride),
        ]
        if stride == 2:
            layers += _depthwise(middle)
        layers += [
            nn.ReLU(inplace=True),
            nn.Conv2d(middle, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.branch = nn.Sequential(*layers)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                *_depthwise(in_channels, stride=stride),
                ConvBNReLU(in_channels, out_channels, 1, relu=False),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class ContextEmbedding(nn.Module):
    """Global average pool -> BN -> 1x1 Conv-BN-ReLU, broadcast-added, then Conv3x3-BN-ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pooled = nn.Sequential(
            nn.BatchNorm2d(channels), ConvBNReLU(channels, channels, kernel_size=1)
        )
        self.conv = ConvBNReLU(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x + self.pooled(x.mean(dim=(2, 3), keepdim=True)))


class BilateralGuidedAggregation(nn.Module):
    """BGA: each branch gates the other at its own resolution, then the two are summed at
    the detail branch's 1/8 and fused by Conv3x3-BN-ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.detail_keep = nn.Sequential(
            *_depthwise(channels), nn.Conv2d(channels, channels, 1, bias=False)
        )
        self.detail_down = nn.Sequential(
            ConvBNReLU(channels, channels, stride=2, relu=False),
            nn.AvgPool2d(3, stride=2, padding=1),
        )
        self.semantic_up = ConvBNReLU(channels, channels, relu=False)
        self.semantic_keep = nn.Sequential(
            *_depthwise(channels), nn.Conv2d(channels, channels, 1, bias=False)
        )
        self.fuse = ConvBNReLU(channels, channels)

    def forward(self, detail: Tensor, semantic: Tensor) -> Tensor:
        high = self.detail_keep(detail) * torch.sigmoid(
            resize_to(self.semantic_up(semantic), detail)
        )
        low = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.fuse(high + resize_to(low, detail))


class BiSeNetV2(SegmentationModel):
    """BiSeNet V2 (Yu et al., IJCV 2021) as the paper's Table 1 and the widely used PyTorch
    port (CoinCheung/BiSeNet) build it:

    - detail branch: Conv3x3-BN-ReLU stages of (64, 64), (64, 64, 64), (128, 128, 128)
      channels, each starting with stride 2, to 1/8;
    - semantic branch (lambda = 1/4): stem to 1/4 with 16 channels, gather-and-expand
      stages of 32, 64, 128 channels to 1/32, context embedding;
    - bilateral guided aggregation, then the segmentation head: Conv3x3-BN-ReLU to
      ``head_width`` channels, dropout 0.1, 1x1 to the classes, 8x bilinear upsampling.

    Parameters: 3.34 M at the defaults against Table IV's 2.85 M (+17 %). The head width is
    not given in the paper; the references use 1024 (CoinCheung's port, MMSegmentation's
    config), which we follow. ``head_width=512`` gives 2.75 M, within 4 % of Table IV, if a
    closer size matters more than following the references. The booster (auxiliary)
    heads, used only for the training loss, are left out. The aggregation resizes the
    semantic side bilinearly where the port uses 4x nearest upsampling (no weights differ).

    Args:
        base_width: detail-branch width of the first stages (64); the last detail stage,
            the semantic branch's last stage and the aggregation use 2x, the semantic
            stem 1/4 of it.
        head_width: channels of the segmentation head's 3x3 convolution (1024).
        in_channels: image channels (1: grey-level image scaled to 0..1).
        num_classes: output classes (4).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 32.
    """

    input_divisor: ClassVar[int] = CONTEXT_STRIDE
    card_summary: ClassVar[str] = (
        "BiSeNet V2 baseline (Yu et al. 2021) of the AMFL paper's comparison: detail branch "
        "plus a light semantic branch, joined by bilateral guided aggregation. It returns "
        "logits; `model.predict(images)` returns probabilities."
    )

    def __init__(
        self,
        base_width: int = 64,
        head_width: int = 1024,
        in_channels: int = 1,
        num_classes: int = 4,
    ) -> None:
        super().__init__()
        require_positive_ints(
            "BiSeNetV2", head_width=head_width, in_channels=in_channels, num_classes=num_classes
        )
        if (
            isinstance(base_width, bool)
            or not isinstance(base_width, int)
            or base_width < 4
            or base_width % 4
        ):
            raise ValueError(
                "BiSeNetV2 needs base_width a positive multiple of 4 (its semantic stem has "
                f"base_width / 4 channels); got base_width={base_width!r}"
            )
        self.base_width = base_width
        self.head_width = head_width
        self.in_channels = in_channels
        self.num_classes = num_classes
        w, wide = base_width, 2 * base_width
        self.detail = nn.Sequential(
            ConvBNReLU(in_channels, w, stride=2),
            ConvBNReLU(w, w),
            ConvBNReLU(w, w, stride=2),
            ConvBNReLU(w, w),
            ConvBNReLU(w, w),
            ConvBNReLU(w, wide, stride=2),
            ConvBNReLU(wide, wide),
            ConvBNReLU(wide, wide),
        )
        self.semantic = nn.Sequential(
            StemBlock(in_channels, w // 4),
            GatherExpand(w // 4, w // 2, stride=2),
            GatherExpand(w // 2, w // 2),
            GatherExpand(w // 2, w, stride=2),
            GatherExpand(w, w),
            GatherExpand(w, wide, stride=2),
            GatherExpand(wide, wide),
            GatherExpand(wide, wide),
            GatherExpand(wide, wide),
            ContextEmbedding(wide),
        )
        self.aggregation = BilateralGuidedAggregation(wide)
        self.head = nn.Sequential(
            ConvBNReLU(wide, head_width), nn.Dropout(0.1), nn.Conv2d(head_width, num_classes, 1)
        )

    def compute_logits(self, images: Tensor) -> Tensor:
        features = self.aggregation(self.detail(images), self.semantic(images))
        return F.interpolate(
            self.head(features), size=images.shape[-2:], mode="bilinear", align_corners=False
        )
