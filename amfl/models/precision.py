"""The number format a network computes in at inference: float32, or bfloat16 for speed.

On a CPU with native bfloat16 (AVX512-BF16 or AMX) the convolutions of the small NestedUNet
run about twice as fast in bfloat16, and the bundled model's scores move by hundredths of a
point (``results/precision/``). Elsewhere bfloat16 is emulated and can be slower, so
float32 stays the default and bfloat16 is asked for by name.
"""

from __future__ import annotations

import torch
from torch import nn

from amfl.models.folding import fold_batch_norms

#: Names accepted by :func:`in_precision`, the default first.
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def in_precision(model: nn.Module, precision: str) -> nn.Module:
    """``model`` itself for float32. For bfloat16, an eval-mode copy whose weights are
    bfloat16 and whose forward still takes and returns float32 tensors, so callers do not
    change; batch norms are folded into their convolutions first, in float32, so that their
    scale and shift are rounded once, with the weights they multiply."""
    if check_precision(precision) == "float32":
        return model
    reduced = fold_batch_norms(model).to(torch.bfloat16)
    reduced.register_forward_pre_hook(_inputs_to_bfloat16)
    reduced.register_forward_hook(_output_to_float32)
    return reduced


def _inputs_to_bfloat16(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(tensor.to(torch.bfloat16) for tensor in inputs)


def _output_to_float32(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return output.float()
