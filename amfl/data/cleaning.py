"""Label cleaning: undo the artefacts that the spline rotation leaves in the raw labels.

Rotating the 0/1 and 0/2 masks with a cubic spline leaves, along edges, thin rims of a
wrong label (a chromosome-2 edge rounded to 1, overshoots that add up to the invalid 4).
The cleaned file the AMFL authors trained on re-labels every chromosome pixel from seeds:
the regions of each label that survive an opening with a radius-1 disk are kept, and every
other foreground pixel goes to the seed it reaches first in a watershed on the inverted
distance to the background. Thin rims and isolated pixels cannot hold a seed, so they join
the chromosome they lie on; the foreground itself is unchanged except for a component with
no seed at all, which becomes background. Measured against 1,209 of the authors' own test
masks, this reproduces them to within 2 pixels (``python -m amfl.data fidelity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import morphology, segmentation
from tqdm.auto import tqdm

from amfl.data.pairs import OverlapPairs

SEED_LABELS = (1, 2, 3)
SEED_OPENING = morphology.disk(1)


@dataclass(frozen=True)
class CleaningReport:
    samples: int
    changed_pixels: int
    changed_samples: int

    def __str__(self) -> str:
        return (
            f"cleaning changed {self.changed_pixels:,} pixels in "
            f"{self.changed_samples:,} of {self.samples:,} samples"
        )


def _inverted_distance(foreground: np.ndarray) -> np.ndarray:
    """Distance to the background, inverted and scaled to 0..255 (uint8): basins at the
    chromosome axes, so the watershed floods outwards from there."""
    distance = ndimage.distance_transform_edt(foreground)
    inverted = distance.max() - distance
    span = np.ptp(inverted)
    if span == 0:
        return np.zeros(foreground.shape, np.uint8)
    return ((inverted - inverted.min()) / span * 255).astype(np.uint8)


def clean_label_map(labels: np.ndarray) -> np.ndarray:
    """Clean one (H, W) label map (values 0-4); returns uint8 values 0-3."""
    foreground = labels > 0
    seeds = np.zeros(labels.shape, np.int32)
    for value in SEED_LABELS:
        seeds[morphology.opening(labels == value, SEED_OPENING)] = value
    cleaned = segmentation.watershed(_inverted_distance(foreground), markers=seeds, mask=foreground)
    return cleaned.astype(np.uint8)


def clean_pairs(pairs: OverlapPairs, progress: bool = True) -> tuple[OverlapPairs, CleaningReport]:
    """Clean every label map; the images are shared, not copied."""
    cleaned = np.empty_like(pairs.labels)
    for index, labels in enumerate(
        tqdm(pairs.labels, desc="cleaning labels", unit="sample", disable=not progress)
    ):
        cleaned[index] = clean_label_map(labels)
    return OverlapPairs(pairs.images, cleaned), compare_labels(pairs.labels, cleaned)


def compare_labels(raw: np.ndarray, cleaned: np.ndarray) -> CleaningReport:
    """How many pixels and samples the cleaning changed."""
    changed = cleaned != raw
    return CleaningReport(
        samples=len(raw),
        changed_pixels=int(changed.sum()),
        changed_samples=int(changed.any(axis=(1, 2)).sum()),
    )
