"""Overlap parts that cannot be a crossing, given back to the chromosome around them.

On real touching pairs, where two chromosomes only meet, a network trained on crossings
paints overlap where there is none: specks along the seam, and blobs inside one chromosome;
with overlap absent from the truth, each costs a quarter of the pair's mean Dice (``python -m
amfl.overlap_sweep`` measures it). Two tests, saved with a model, say which overlap part
(4-connected) is one of these: fewer pixels than ``Preprocessor.min_overlap_pixels`` (a
speck), or a border on which one chromosome holds less than
``Preprocessor.min_overlap_border_share`` of the chromosome pixels (one-sided: where two
chromosomes cross, both run into their overlap). 0 turns a test off.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amfl.naming import FIRST, OVERLAP, SECOND, each_map


def merge_stray_overlaps(labels: np.ndarray, min_pixels: int, min_border_share: float = 0.0) -> np.ndarray:
    """A (H, W) label map with each overlap part of fewer than ``min_pixels`` pixels, or with
    less than ``min_border_share`` of its bordering chromosome pixels from one of the two,
    relabelled as the chromosome that borders it most (background when none borders it)."""
    if min_pixels <= 0 and min_border_share <= 0:
        return labels
    parts, count = ndimage.label(labels == OVERLAP)
    sizes = np.bincount(parts.ravel(), minlength=count + 1)
    merged = labels.copy()
    for part, box in enumerate(ndimage.find_objects(parts), start=1):
        grown = tuple(slice(max(side.start - 1, 0), side.stop + 1) for side in box)
        inside = parts[grown] == part
        ring = labels[grown][ndimage.binary_dilation(inside) & ~inside]
        first, second = int((ring == FIRST).sum()), int((ring == SECOND).sum())
        one_sided = first + second > 0 and min(first, second) < min_border_share * (first + second)
        if sizes[part] >= min_pixels and not one_sided:
            continue
        merged[grown][inside] = 0 if first + second == 0 else (FIRST if first >= second else SECOND)
    return merged


def merge_stray_overlaps_batch(labels: np.ndarray, min_pixels: int, min_border_share: float = 0.0) -> np.ndarray:
    """:func:`merge_stray_overlaps` of every map of a (..., H, W) stack."""
    if min_pixels <= 0 and min_border_share <= 0:
        return labels
    return each_map(labels, lambda one: merge_stray_overlaps(one, min_pixels, min_border_share))
