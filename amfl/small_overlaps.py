"""Overlap parts too small to be a crossing, given back to the chromosome around them.

On real touching pairs, where two chromosomes only meet, a network trained on crossings
paints a few overlap pixels along the seam; with overlap absent from the truth, each such
speck costs a quarter of the pair's mean Dice (``python -m amfl.overlap_sweep`` measures it).
A model's saved ``Preprocessor.min_overlap_pixels`` says below what size an overlap part
(4-connected) is one of these specks; 0 keeps every part.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amfl.naming import FIRST, OVERLAP, SECOND, each_map


def merge_small_overlaps(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """A (H, W) label map with each overlap part of fewer than ``min_pixels`` pixels relabelled
    as the chromosome that borders it most (background when no chromosome borders it)."""
    if min_pixels <= 0:
        return labels
    parts, count = ndimage.label(labels == OVERLAP)
    if count == 0:
        return labels
    sizes = np.bincount(parts.ravel(), minlength=count + 1)
    merged = labels.copy()
    for part, box in enumerate(ndimage.find_objects(parts), start=1):
        if sizes[part] >= min_pixels:
            continue
        grown = tuple(slice(max(side.start - 1, 0), side.stop + 1) for side in box)
        inside = parts[grown] == part
        ring = labels[grown][ndimage.binary_dilation(inside) & ~inside]
        first, second = int((ring == FIRST).sum()), int((ring == SECOND).sum())
        merged[grown][inside] = 0 if first + second == 0 else (FIRST if first >= second else SECOND)
    return merged


def merge_small_overlaps_batch(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """:func:`merge_small_overlaps` of every map of a (..., H, W) stack."""
    if min_pixels <= 0:
        return labels
    return each_map(labels, lambda one: merge_small_overlaps(one, min_pixels))
