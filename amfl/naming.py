"""Which of two chromosomes is called 1 and which 2: the naming of the Pommier and ADIR truths
(label 1 the smaller chromosome by area with the overlap counted in both, 2 the larger, 3
their overlap), for training targets and for a model's output.

A network trained on the strict names must compare the two areas across the crop before it
may name a pixel; on real pairs it often splits one chromosome between the two labels
(``python -m amfl.real_errors``). Training with ``--pair_naming free`` lets the names of each
sample's truth follow the prediction (:func:`names_following_prediction`), so the network
only has to keep the two apart; its output is then named by the truth's own rule
(:func:`name_by_area`), as the model's saved ``Preprocessor.naming`` says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

#: Label values of the two chromosomes' exclusive parts and of their overlap.
FIRST, SECOND, OVERLAP = 1, 2, 3
#: ``Preprocessor.naming`` choices: the network's labels as they are, or renamed by area.
NAMINGS = ("network", "area")
#: ``--pair_naming`` choices of training, and the output naming each one asks for.
#: ``free_overlapping`` frees the names of samples whose truth has overlap only: naming by
#: area renames just those parts at inference, so a touching pair keeps its strict names.
PAIR_NAMINGS = {"strict": "network", "free": "area", "free_overlapping": "area"}


def swap_names(labels: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``labels`` with chromosomes 1 and 2 exchanged (only inside ``where``, if given)."""
    inside = np.ones(labels.shape, bool) if where is None else where
    swapped = labels.copy()
    swapped[inside & (labels == FIRST)] = SECOND
    swapped[inside & (labels == SECOND)] = FIRST
    return swapped


def name_by_area(labels: np.ndarray) -> np.ndarray:
    """A (H, W) label map with each connected part that holds overlap renamed, if needed, so
    that label 1 is its smaller chromosome. Parts without overlap are left as they are: their
    two names could be two neighbours, or one chromosome, so area says nothing about them."""
    parts, count = ndimage.label(labels > 0)
    named = labels
    for part in range(1, count + 1):
        inside = parts == part
        if not (labels[inside] == OVERLAP).any():
            continue
        if (labels[inside] == FIRST).sum() > (labels[inside] == SECOND).sum():
            named = swap_names(named, inside)
    return named


def each_map(labels: np.ndarray, change: Callable[..., np.ndarray], *paired: np.ndarray) -> np.ndarray:
    """``change`` applied to every (H, W) map of a (..., H, W) stack of label maps, with the
    matching (H, W) map of each ``paired`` stack of the same shape as further arguments."""
    stacks = [stack.reshape(-1, *stack.shape[-2:]) for stack in (labels, *paired)]
    return np.stack([change(*maps) for maps in zip(*stacks, strict=True)]).reshape(labels.shape)


def apply_naming(labels: np.ndarray, naming: str) -> np.ndarray:
    """Label maps (..., H, W) named as ``naming`` (one of :data:`NAMINGS`) says."""
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}; got {naming!r}")
    if naming == "network":
        return labels
    return each_map(labels, name_by_area)


def names_following_prediction(labels: torch.Tensor, logits: torch.Tensor, overlapping_only: bool = False) -> torch.Tensor:
    """Training targets (N, H, W) with each sample's chromosomes 1 and 2 exchanged where the
    prediction (logits (N, C, H, W), not differentiated) agrees more with the exchange: the
    sum of the predicted probability of each pixel's truth name, per sample, for both namings.
    ``overlapping_only`` leaves samples without overlap in their truth as they are."""
    probabilities = logits.detach().softmax(dim=1)
    first, second = labels == FIRST, labels == SECOND
    as_given = (probabilities[:, FIRST] * first + probabilities[:, SECOND] * second).sum(dim=(1, 2))
    exchanged = (probabilities[:, SECOND] * first + probabilities[:, FIRST] * second).sum(dim=(1, 2))
    swapped = torch.where(first, SECOND, torch.where(second, FIRST, labels))
    follow = exchanged > as_given
    if overlapping_only:
        follow &= (labels == OVERLAP).flatten(1).any(dim=1)
    return torch.where(follow[:, None, None], swapped, labels)
