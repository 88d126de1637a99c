"""Per-image inference latency, measured the same way for every model and table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def median_ms(work: Callable[[], object], runs: int = 50, warmup: int = 5, device: torch.device | None = None) -> float:
    """Median milliseconds of ``work()`` over ``runs`` calls after ``warmup`` untimed ones.

    On a GPU each call is synchronised, so the time is the kernels' time, not the launch's.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1; got {runs}")
    for _ in range(warmup):
        work()
    timings = []
    for _ in range(runs):
        _synchronise(device)
        started = time.perf_counter()
        work()
        _synchronise(device)
        timings.append(1000 * (time.perf_counter() - started))
    return statistics.median(timings)


@torch.inference_mode()
def median_latency_ms(
    model: nn.Module, size: tuple[int, int] = (128, 128), runs: int = 50, warmup: int = 5,
    device: str | torch.device = "cpu",
) -> float:
    """Median milliseconds of one forward pass on a (1, 1, H, W) image, batch 1, float32.

    This is how the paper's Table IV times a model (and how the authors' code runs it):
    plain eager PyTorch, one image at a time.
    """
    device = torch.device(device)
    model = model.eval().to(device)
    image = torch.rand(1, 1, *size, device=device)
    return median_ms(lambda: model(image), runs, warmup, device)


def _synchronise(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
