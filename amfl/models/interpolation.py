"""Weights between a model and its fine-tune, on the straight line that joins them.

A fine-tune from a trained model stays in that model's basin, so the weights
``(1 - w) * start + w * tuned`` for ``w`` in [0, 1] are themselves a working model, and often
one that keeps most of what the start was good at while gaining most of what the fine-tune
learned (weight-space ensembling, "WiSE-FT", Wortsman et al. 2022). Here it trades the
Pommier pairs, on which the bundled model was trained, against the real pairs a fine-tune
learns. Both ends must have the same tensors (a widened start is the widened model).
A weight above 1 goes on past the fine-tune along the same line: from the start toward a
published blend at weight ``w``, weight ``1 / w`` gives back the fine-tune it was blended with,
so a run can go on from a tuned end that only survives inside a blend.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path

from safetensors.torch import load_file
from torch import Tensor, nn

from amfl.hub_files import WEIGHTS_FILE
from amfl.models.hub_mixin import tensor_misfits, weight_misfits


def interpolated_model(start: nn.Module, tuned: Mapping[str, Tensor], weight: float) -> nn.Module:
    """A copy of ``start`` whose floating-point tensors are ``(1 - weight) * start + weight * tuned``.

    Counters (integer buffers such as batch norm's ``num_batches_tracked``) are taken from
    ``tuned``. Raises ValueError when ``weight`` is negative or not finite, or ``tuned`` does not fit.
    """
    if not (math.isfinite(weight) and weight >= 0.0):
        raise ValueError(f"interpolation weight must be a finite number, 0 or more (0 = the start, 1 = the fine-tune, above 1 past it); got {weight}")
    misfits = weight_misfits(start, tuned)
    if misfits:
        raise ValueError(f"the fine-tuned weights do not fit the starting model: {'; '.join(misfits)}")
    mixed = {
        name: first.lerp(tuned[name].to(first.dtype), weight) if first.is_floating_point() else tuned[name].clone()
        for name, first in start.state_dict().items()
    }
    model = copy.deepcopy(start)
    model.load_state_dict(mixed)
    return model


def mean_weights(weight_sets: list[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """The mean of several sets of the same tensors (e.g. consecutive epochs of one run, whose
    average often scores better than any one of them). Counters come from the last set.

    Raises ValueError when the sets are empty or do not hold the same tensors.
    """
    if not weight_sets:
        raise ValueError("no weights to average")
    first, *others = weight_sets
    for index, other in enumerate(others, start=2):
        misfits = tensor_misfits(first, other)
        if misfits:
            raise ValueError(f"weights {index} do not match the first: {'; '.join(misfits)}")
    return {
        name: sum(weights[name].double() for weights in weight_sets).div(len(weight_sets)).to(tensor.dtype)
        if tensor.is_floating_point() else weight_sets[-1][name].clone()
        for name, tensor in first.items()
    }


def read_weights(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.safetensors`` file, or of a folder's model.safetensors (a model
    folder or a training checkpoint)."""
    path = Path(path)
    file = path / WEIGHTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no weights at {file}: give a .safetensors file or a folder holding {WEIGHTS_FILE}")
    return load_file(file, device="cpu")
