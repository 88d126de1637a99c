"""A TorchScript trace of a network for whole-image inference, checked against the network.

Why: an eager forward of the small NestedUNet is some 600 operators, and each gives Python's
GIL back and takes it again. In the app, requests run in threads beside Gradio's own Python
work, and every retake waits for a thread holding the GIL: four threads of forwards beside
one busy Python thread managed 13-14 forwards a second eagerly and 65-66 traced (62-80 and
73-95 without the busy thread; two runs of ``benchmarks/bench_tracing.py``, 128 x 128, one
torch thread each, this project's 2-core CPU). A traced graph runs its operators without
Python in between.

A trace records the operators one example took, so :func:`traced_network` checks it on a
second input of another shape and keeps it only if the logits are bit for bit the
network's: a network whose control flow depends on the input falls back to eager.

``torch.jit.trace`` is deprecated in torch 2.13 (its warning is silenced here). What torch
recommends instead does not help this case: ``torch.export`` gives a graph that Python
runs operator by operator, and ``torch.compile`` a Python wrapper around its kernels. When
a later torch drops the trace, tracing fails and the network runs eagerly, as before.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Height and width of the tracing example and of the check, in multiples of the network's
#: input divisor: different, so that a graph that fixed a size in a constant is caught.
TRACE_SIDES = ((8, 8), (9, 7))


def check_inputs(in_channels: int, divisor: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(example, check): fixed random (1, in_channels, H, W) images of the two
    :data:`TRACE_SIDES`, to record a graph on one and check it on the other."""
    generator = torch.Generator().manual_seed(0)
    example, check = (torch.rand(1, in_channels, rows * divisor, columns * divisor, generator=generator).to(device)
                      for rows, columns in TRACE_SIDES)
    return example, check


def traced_network(model: nn.Module, in_channels: int, divisor: int, device: torch.device) -> nn.Module:
    """``model`` traced with TorchScript if the trace computes exactly what ``model`` does on
    an input of another shape; else ``model`` itself (logged). ``model`` must be in eval
    mode; its forward takes (N, in_channels, H, W) with H and W multiples of ``divisor``."""
    example, check = check_inputs(in_channels, divisor, device)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input checks become constants
            warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
            traced = torch.jit.trace(model, example, check_trace=False)
            same = torch.equal(traced(check), model(check)) and torch.equal(traced(example), model(example))
    except Exception as error:  # an untraceable network runs eagerly
        logger.info("%s runs eagerly: tracing failed (%s: %s)", type(model).__name__, type(error).__name__, error)
        return model
    if not same:
        logger.info("%s runs eagerly: its trace differs from it on another input size", type(model).__name__)
        return model
    return traced
