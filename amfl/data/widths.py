"""Chromosome width in pixels, to check that the real metaphases and the Pommier pairs are
at the same scale (a model trained on one meets the other at its trained size).

Width of one chromosome mask: the median, along its skeleton, of twice the Euclidean
distance to the nearest background pixel (a bar w pixels wide measures w when w is even,
w + 1 when odd: the convention shifts both data sets alike).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from amfl.connectivity import FOUR_CONNECTED
from amfl.data.adir import OVERLAP_VALUE, Metaphase
from amfl.data.pairs import OverlapPairs


def mask_width(mask: np.ndarray) -> float:
    """Median width of one chromosome mask, pixels (NaN for an empty mask)."""
    if not mask.any():
        return float("nan")
    padded = np.pad(mask, 1)
    distances = ndimage.distance_transform_edt(padded)[skeletonize(padded)]
    return float(np.median(2 * distances))


def single_chromosome_masks(labels: np.ndarray) -> list[np.ndarray]:
    """Masks of the metaphase's isolated chromosomes: components of one class, no overlap."""
    components, _ = ndimage.label(labels > 0, FOUR_CONNECTED)
    masks = []
    for number, found in enumerate(ndimage.find_objects(components), start=1):
        component = components[found] == number
        values = np.unique(labels[found][component])
        if len(values) == 1 and values[0] != OVERLAP_VALUE:
            masks.append(component)
    return masks


def widths_by_case(metaphases: Iterable[Metaphase]) -> dict[str, list[float]]:
    """Width of every isolated chromosome, grouped by case."""
    widths: dict[str, list[float]] = {}
    for metaphase in metaphases:
        _, labels = metaphase.read()
        widths.setdefault(metaphase.case, []).extend(mask_width(mask) for mask in single_chromosome_masks(labels))
    return widths


def pommier_widths(pairs: OverlapPairs, count: int = 500, seed: int = 0) -> list[float]:
    """Width of both whole chromosomes (A = labels 1 + 3, B = 2 + 3) of ``count`` seeded
    samples of the Pommier pairs."""
    chosen = np.random.default_rng(seed).choice(len(pairs), size=min(count, len(pairs)), replace=False)
    widths = []
    for labels in pairs.labels[chosen]:
        widths += [mask_width((labels == 1) | (labels == 3)), mask_width((labels == 2) | (labels == 3))]
    return widths
