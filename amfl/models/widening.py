"""Widen a trained NestedUNet to a larger base width without changing what it computes.

A model trained at base width 8 holds the Pommier pairs well but has too few weights to learn
real microscope pairs beside them (``results/real-image``, stop 21). Training a wider one from
scratch costs days on a CPU; widening the trained one (Net2WiderNet, Chen et al., ICLR 2016)
starts the wider model at the narrow one's exact scores, so a fine-tune only has to add.

Each channel of the wide model copies one channel of the narrow model (the first ones copy
themselves, the new ones copy a channel drawn at random): its incoming convolution weights,
bias and batch-norm parameters and running statistics. A layer reading copies of one channel
splits that channel's weights among them, so the sum, and the output, are unchanged. The
split is random per weight (shares that sum to one), so the copies get different gradients
and grow apart in training instead of staying twins.
"""

from __future__ import annotations

import torch
from torch import Tensor

from amfl.models.nested_unet import LEVELS, NestedUNet, node_name

#: Range of the random shares before they are normalised to sum to one within a channel's copies.
SHARE_RANGE = (0.5, 1.5)


def widen_nested_unet(narrow: NestedUNet, base_width: int, seed: int = 0) -> NestedUNet:
    """A NestedUNet of ``base_width`` computing the same function as ``narrow``.

    The function is the same in eval mode (running statistics) and in training mode (a copied
    channel has the same batch statistics as its original), up to float rounding.

    Raises:
        TypeError: ``narrow`` is not a NestedUNet.
        ValueError: ``base_width`` is smaller than ``narrow``'s.
    """
    if not isinstance(narrow, NestedUNet):
        raise TypeError(f"only a NestedUNet can be widened; got a {type(narrow).__name__}")
    if base_width < narrow.base_width:
        raise ValueError(
            f"cannot widen a NestedUNet of base width {narrow.base_width} to the smaller {base_width}"
        )
    wide = type(narrow)(base_width=base_width, in_channels=narrow.in_channels, num_classes=narrow.num_classes)
    random = torch.Generator().manual_seed(seed)
    old = narrow.state_dict()
    new: dict[str, Tensor] = {}

    def widen_node(name: str, inputs: Tensor, level: int) -> Tensor:
        """Widen node ``name`` (a ConvBlock) reading channels ``inputs``; its output channels."""
        old_width, new_width = narrow.base_width * 2**level, base_width * 2**level
        middle = _channel_sources(old_width, new_width, random)
        _widen_convolution(old, new, f"nodes.{name}.0", inputs, middle, random)
        _copy_batchnorm(old, new, f"nodes.{name}.1", middle)
        outputs = _channel_sources(old_width, new_width, random)
        _widen_convolution(old, new, f"nodes.{name}.3", middle, outputs, random)
        _copy_batchnorm(old, new, f"nodes.{name}.4", outputs)
        return outputs

    # Each node's output channels, as indices of the narrow node's channels (eq. 1's wiring).
    sources = {(0, 0): widen_node(node_name(0, 0), torch.arange(narrow.in_channels), 0)}
    for level in range(1, LEVELS):
        sources[level, 0] = widen_node(node_name(level, 0), sources[level - 1, 0], level)
    for column in range(1, LEVELS):
        for level in range(LEVELS - column):
            width = narrow.base_width * 2**level
            parts = [sources[level, earlier] + earlier * width for earlier in range(column)]
            parts.append(sources[level + 1, column - 1] + column * width)
            sources[level, column] = widen_node(node_name(level, column), torch.cat(parts), level)
    _widen_convolution(old, new, "head", sources[0, LEVELS - 1], torch.arange(narrow.num_classes), random)
    wide.load_state_dict(new)
    return wide


def _channel_sources(old_width: int, new_width: int, random: torch.Generator) -> Tensor:
    """For each new channel, the old channel it copies: all old ones, then random draws.

    Draws go through shuffles of all old channels, so doubling copies each channel once.
    """
    extra = new_width - old_width
    shuffles = [torch.randperm(old_width, generator=random) for _ in range(-(-extra // old_width))]
    return torch.cat([torch.arange(old_width), *shuffles])[:new_width]


def _widen_convolution(
    old: dict[str, Tensor], new: dict[str, Tensor], prefix: str, inputs: Tensor, outputs: Tensor,
    random: torch.Generator,
) -> None:
    """Weights of convolution ``prefix`` for new input and output channels given as old indices."""
    weight = old[f"{prefix}.weight"][outputs][:, inputs]
    shares = torch.empty(weight.shape[:2]).uniform_(*SHARE_RANGE, generator=random)
    totals = torch.zeros(len(outputs), int(inputs.max()) + 1).index_add_(1, inputs, shares)
    shares = shares / totals[:, inputs]
    new[f"{prefix}.weight"] = weight * shares[:, :, None, None].to(weight.dtype)
    new[f"{prefix}.bias"] = old[f"{prefix}.bias"][outputs].clone()


def _copy_batchnorm(old: dict[str, Tensor], new: dict[str, Tensor], prefix: str, channels: Tensor) -> None:
    """Batch-norm parameters and running statistics of the copied channels."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        new[f"{prefix}.{name}"] = old[f"{prefix}.{name}"][channels].clone()
    new[f"{prefix}.num_batches_tracked"] = old[f"{prefix}.num_batches_tracked"].clone()
