"""The number format a network computes in at inference: float32, or bfloat16 for speed.

On a CPU with native bfloat16 (AVX512-BF16 or AMX) the convolutions of the small NestedUNet
run about twice as fast in bfloat16, and the bundled model's scores move by hundredths of a
point (``results/precision/``). Elsewhere bfloat16 is emulated and can be slower. So the
command line and the evaluation default to float32, the format the model cards' scores are
measured in, and the app asks for :data:`AUTO`: bfloat16 only where the CPU has it natively.
The trainer warns for the same reason when its bfloat16 autocast would be emulated.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from amfl.models.folding import fold_batch_norms

#: Names accepted by :func:`in_precision`, the default first.
PRECISIONS = ("float32", "bfloat16")
#: The app's default setting: whichever of :data:`PRECISIONS` this CPU computes faster.
AUTO = "auto"
#: Settings accepted by :func:`choose_precision`.
SETTINGS = (AUTO, *PRECISIONS)


def check_precision(precision: str, choices: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` if it is one of ``choices``; else a ValueError naming them."""
    if precision not in choices:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(choices)}")
    return precision


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles): only then
    is bfloat16 the faster format."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def warn_if_bfloat16_is_emulated(mixed_precision: str, device: torch.device) -> None:
    """Warn when training autocasts to bfloat16 on a CPU that emulates it: there each step
    took ten times as long as in float32 (``benchmarks/bench_training.py``, the width-16
    small generator on a 2-core AVX2 CPU, ``results/real-image/README.md``, stop 30)."""
    if mixed_precision == "bf16" and device.type == "cpu" and not native_bfloat16():
        warnings.warn(
            f"--mixed_precision bf16 on a CPU without native bfloat16 (AVX512-BF16 or AMX; this one has "
            f"{torch.backends.cpu.get_cpu_capability()}): bfloat16 is emulated here and training runs "
            "many times slower than in float32; leave --mixed_precision out on this machine",
            stacklevel=2,
        )


def choose_precision(setting: str) -> str:
    """The format a ``setting`` names: for :data:`AUTO`, bfloat16 on a CPU with native
    bfloat16 and float32 elsewhere; otherwise ``setting`` itself, checked."""
    if check_precision(setting, SETTINGS) == AUTO:
        return PRECISIONS[1] if native_bfloat16() else PRECISIONS[0]
    return setting


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
