"""A chromosome that lies wholly under its partner: a few stray pixels of its name become overlap.

When the smaller chromosome of a pair lies entirely on the larger one, the truth has no pixel
of its own name: its whole footprint is overlap. The network often still paints a speck of a
few pixels with that name at the overlap's rim, and a class present in the prediction but
absent from the truth scores a Dice of 0 and a Hausdorff of the frame's diagonal for that pair
(:mod:`amfl.metrics`).
``Preprocessor.min_chromosome_pixels`` gives the overlap every pixel of a name that holds fewer
than that many pixels in a cluster with overlap (8-connected); 0 leaves them. Clusters without
overlap are left as they are: there the two names may be two touching chromosomes, one of them
small. Stop 56 swept it on the default and found it does not carry from validation to test
(``results/real-image/README.md``, rule 42). A large image, segmented in tiles, is a whole
field whose clusters can hold several chromosomes of one name, and is left as it is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amfl.connectivity import EIGHT_CONNECTED
from amfl.naming import FIRST, OVERLAP, SECOND, each_map


def merge_covered_chromosomes(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """A (H, W) label map in which, within each cluster that holds overlap, chromosome 1 or 2
    with fewer than ``min_pixels`` pixels there becomes overlap; the map itself when nothing
    changes."""
    if min_pixels <= 0:
        return labels
    clusters, count = ndimage.label(labels > 0, structure=EIGHT_CONNECTED)
    has_overlap = np.bincount(clusters[labels == OVERLAP], minlength=count + 1) > 0
    covered = np.zeros(labels.shape, bool)
    for name in (FIRST, SECOND):
        pixels = np.bincount(clusters[labels == name], minlength=count + 1)
        few = has_overlap & (pixels > 0) & (pixels < min_pixels)
        covered |= few[clusters] & (labels == name)
    if not covered.any():
        return labels
    return np.where(covered, OVERLAP, labels).astype(labels.dtype)


def merge_covered_chromosomes_batch(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """:func:`merge_covered_chromosomes` of every map of a (..., H, W) stack."""
    if min_pixels <= 0:
        return labels
    return each_map(labels, lambda one: merge_covered_chromosomes(one, min_pixels))
