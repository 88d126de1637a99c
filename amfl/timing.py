"""Per-image inference latency, measured the same way for every model and table."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.inference_mode()
def median_latency_ms(
    model: nn.Module, size: tuple[int, int] = (128, 128), runs: int = 50, warmup: int = 5,
    device: str | torch.device = "cpu",
) -> float:
    """Median milliseconds of one forward pass on a (1, 1, H, W) image, batch 1, float32.

    This is how the paper's Table IV times a model: plain eager PyTorch, one image at a time.
    On a GPU each run is synchronised, so the time is the kernel time, not the launch time.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1; got {runs}")
    device = torch.device(device)
    model = model.eval().to(device)
    image = torch.rand(1, 1, *size, device=device)
    for _ in range(warmup):
        model(image)
    timings = []
    for _ in range(runs):
        _synchronise(device)
        started = time.perf_counter()
        model(image)
        _synchronise(device)
        timings.append(1000 * (time.perf_counter() - started))
    return statistics.median(timings)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
