"""FastFCN (Wu et al., 2019): a ResNet encoder whose last three stages are merged at 1/8
by the joint pyramid upsampling (JPU) module instead of dilating the backbone, followed by a
segmentation head; the largest baseline of Section II.D."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amfl.models.arguments import require_positive_ints
from amfl.models.base import SegmentationModel
from amfl.models.layers import ConvBNReLU, SeparableConv, resize_to
from amfl.models.resnet import ResNetEncoder

#: The backbone keeps all its strides: the deepest features are at 1/32.
ENCODER_STRIDE = 32
#: Dilations of JPU's four parallel separable convolutions.
JPU_DILATIONS = (1, 2, 4, 8)
#: Bin sizes of the pyramid pooling head (PSPNet).
PYRAMID_BINS = (1, 2, 3, 6)
#: Heads FastFCN's reference code puts on the JPU output, by name.
HEADS = ("psp", "encnet")


class JointPyramidUpsampling(nn.Module):
    """JPU: stages 2-4 each to ``width`` channels by Conv3x3-BN-ReLU, resized to stage 2's
    1/8 and concatenated, then four dilated separable Conv-BN-ReLU in parallel (dilations
    1, 2, 4, 8), concatenated: 4 * width channels at 1/8."""

    def __init__(self, in_channels: tuple[int, int, int], width: int) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(ConvBNReLU(channels, width) for channels in in_channels)
        self.dilated = nn.ModuleList(
            nn.Sequential(
                SeparableConv(3 * width, width, dilation),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
            for dilation in JPU_DILATIONS
        )

    def forward(self, features: list[Tensor]) -> Tensor:
        reduced = [reduce(feature) for reduce, feature in zip(self.reduce, features, strict=True)]
        joint = torch.cat(
            [reduced[0], *(resize_to(feature, reduced[0]) for feature in reduced[1:])], dim=1
        )
        return torch.cat([branch(joint) for branch in self.dilated], dim=1)


class PyramidPoolingHead(nn.Module):
    """PSPNet head: the features plus four average-pooled pyramids (bins 1, 2, 3, 6; each
    1x1 Conv-BN-ReLU to in/4 channels, upsampled back), then Conv3x3-BN-ReLU to in/4,
    dropout 0.1, 1x1 to the classes."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        inner = in_channels // 4
        self.pools = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(bins), ConvBNReLU(in_channels, inner, kernel_size=1))
            for bins in PYRAMID_BINS
        )
        self.classify = nn.Sequential(
            ConvBNReLU(2 * in_channels, inner), nn.Dropout(0.1), nn.Conv2d(inner, num_classes, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        pyramid = [resize_to(pool(x), x) for pool in self.pools]
        return self.classify(torch.cat([x, *pyramid], dim=1))


class Encoding(nn.Module):
    """Context encoding layer (Zhang et al., CVPR 2018): soft-assigns every pixel feature
    x_i to K learned codewords c_k with weights softmax_k(-s_k ||x_i - c_k||^2) (s_k learned)
    and returns the aggregated residuals e_k = sum_i a_ik (x_i - c_k), shape (N, K, C)."""

    def __init__(self, channels: int, codes: int) -> None:
        super().__init__()
        bound = 1.0 / (channels * codes) ** 0.5
        self.codewords = nn.Parameter(torch.empty(codes, channels).uniform_(-bound, bound))
        # The reference initialises the scale in [-1, 0) and uses it as s_k directly.
        self.scale = nn.Parameter(torch.empty(codes).uniform_(-1.0, 0.0))

    def forward(self, x: Tensor) -> Tensor:
        pixels = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        squared = (
            pixels.pow(2).sum(-1, keepdim=True)
            - 2 * pixels @ self.codewords.t()
            + self.codewords.pow(2).sum(-1)
        )  # (N, HW, K): ||x_i - c_k||^2
        assignment = F.softmax(self.scale * squared, dim=-1)
        return (
            assignment.transpose(1, 2) @ pixels - assignment.sum(1).unsqueeze(-1) * self.codewords
        )


class EncodingHead(nn.Module):
    """EncNet head: 1x1 Conv-BN-ReLU to ``width``, then the encoding module's channel
    attention relu(f + f * sigmoid(fc(mean_k ReLU(BN(e_k))))), dropout 0.1, 1x1 to classes."""

    def __init__(self, in_channels: int, width: int, codes: int, num_classes: int) -> None:
        super().__init__()
        self.reduce = ConvBNReLU(in_channels, width, kernel_size=1)
        self.encode = nn.Sequential(
            ConvBNReLU(width, width, kernel_size=1),
            Encoding(width, codes),
            nn.BatchNorm1d(codes),
            nn.ReLU(inplace=True),
        )
        self.attention = nn.Sequential(nn.Linear(width, width), nn.Sigmoid())
        self.classify = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(width, num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        weights = self.attention(self.encode(x).mean(dim=1))[:, :, None, None]
        return self.classify(F.relu(x + x * weights))


class FastFCN(SegmentationModel):
    """FastFCN as its reference code (wuhuikai/FastFCN) builds it: an undilated ResNet, JPU
    on stages 2-4 (``jpu_width`` per branch, 4x that out, at 1/8), a segmentation head, and
    8x bilinear upsampling.

    The AMFL paper does not say which backbone or head its FastFCN used, and its 104.3 M
    parameters match no configuration of the reference with the FastFCN paper's
    ResNet-101: with the EncNet head (the FastFCN paper's headline model) it has 63.8 M
    (66.2 M with the training-only auxiliary FCN head and SE-loss classifier, 68.2 M
    counting also the unused ImageNet classifier the reference keeps); with the PSPNet head,
    85.3 M. The defaults are the reference's PSPNet head on ResNet-152 (another backbone the
    reference offers): 100.95 M, within 4 % of Table IV, the only published combination we
    found within 10 %. ``backbone_depth=101, head="encnet"`` builds the headline model.
    Auxiliary and SE-loss heads, which only feed the reference's training loss, are left
    out. No ImageNet weights: the encoder is trained from scratch on one-channel images.

    Args:
        backbone_depth: ResNet depth, one of 18, 34, 50, 101, 152 (152).
        base_width: ResNet stem width (64).
        jpu_width: channels of each JPU branch (512); the head works on 4x this, and its
            inner width is ``jpu_width``.
        head: "psp" (pyramid pooling) or "encnet" (context encoding).
        codes: codewords K of the encoding layer (32; "encnet" only).
        in_channels: image channels (1: grey-level image scaled to 0..1).
        num_classes: output classes (4).

    Shape: (N, in_channels, H, W) -> logits (N, num_classes, H, W); H, W multiples of 32.
    Batch norm after the 1x1 pooled bin of the PSP head needs training batches of at
    least 2 images.
    """

    input_divisor: ClassVar[int] = ENCODER_STRIDE
    card_summary: ClassVar[str] = (
        "FastFCN baseline (Wu et al. 2019) of the AMFL paper's comparison: ResNet encoder, "
        "joint pyramid upsampling and a segmentation head. It returns logits; "
        "`model.predict(images)` returns probabilities."
    )

    def __init__(
        self,
        backbone_depth: int = 152,
        base_width: int = 64,
        jpu_width: int = 512,
        head: str = "psp",
        codes: int = 32,
        in_channels: int = 1,
        num_classes: int = 4,
    ) -> None:
        super().__init__()
        require_positive_ints(
            "FastFCN",
            base_width=base_width,
            jpu_width=jpu_width,
            codes=codes,
            in_channels=in_channels,
            num_classes=num_classes,
        )
        if head not in HEADS:
            raise ValueError(f"FastFCN head must be one of {HEADS}; got {head!r}")
        self.backbone_depth = backbone_depth
        self.head_name = head
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.encoder = ResNetEncoder(backbone_depth, in_channels, base_width)
        self.jpu = JointPyramidUpsampling(self.encoder.stage_channels[1:], jpu_width)
        joint_channels = len(JPU_DILATIONS) * jpu_width
        self.head: nn.Module = (
            PyramidPoolingHead(joint_channels, num_classes)
            if head == "psp"
            else EncodingHead(joint_channels, jpu_width, codes, num_classes)
        )

    def compute_logits(self, images: Tensor) -> Tensor:
        features = self.encoder(images)
        return resize_to(self.head(self.jpu(features[1:])), images)
