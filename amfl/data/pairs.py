"""The in-memory form of the overlapping-pairs dataset, whatever its origin.

The rebuild, the original ``LowRes_13434_overlapping_pairs.h5`` and Hu et al.'s cleaned file
all end up here, so the split, the export and training never care where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Label values: 0 background, 1 and 2 the two chromosomes, 3 their overlap.
CLASS_NAMES = ("background", "chromosome 1", "chromosome 2", "overlap")
#: Label value 4 only exists in the raw file: spline overshoot during generation.
RAW_ERROR_LABEL = 4


@dataclass(frozen=True)
class OverlapPairs:
    """``images``: (N, H, W) grey. The Pommier pairs are int16 with background 0; overlap
    pixels add two intensities (up to about 400) and the spline rotation leaves a few small
    negative values at edges, as in the original file. Synthetic pairs on real backgrounds
    (``amfl.data.synthetic``) are uint8 camera grey. ``labels``: (N, H, W) uint8 label maps (0-3; raw data: also 4)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape != self.labels.shape:
            raise ValueError(
                "images and labels must both be (N, H, W) arrays of the same shape, got "
                f"{self.images.shape} and {self.labels.shape}"
            )
        if self.labels.size and self.labels.max() > RAW_ERROR_LABEL:
            raise ValueError(
                f"label values must lie in 0..{RAW_ERROR_LABEL}, found {int(self.labels.max())}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sample_shape(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def stacked(self) -> np.ndarray:
        """(N, H, W, 2): grey then label, the layout of the original ``dataset_1``."""
        return np.stack([self.images, self.labels.astype(self.images.dtype)], axis=-1)

    @classmethod
    def from_stacked(cls, array: np.ndarray) -> "OverlapPairs":
        """Split a (N, H, W, 2) array (grey, label) as stored in the original file."""
        if array.ndim != 4 or array.shape[-1] != 2:
            raise ValueError(f"expected an (N, H, W, 2) array of grey + label, got {array.shape}")
        grey, label = array[..., 0], array[..., 1]
        limits = np.iinfo(np.int16)
        if grey.size and (grey.min() < limits.min or grey.max() > limits.max):
            raise ValueError(f"grey values must fit int16, found {grey.min()}..{grey.max()}")
        if label.size and (label.min() < 0 or label.max() > RAW_ERROR_LABEL):
            raise ValueError(
                f"label values must lie in 0..{RAW_ERROR_LABEL}, found {label.min()}..{label.max()}"
            )
        return cls(
            np.ascontiguousarray(grey, dtype=np.int16), np.ascontiguousarray(label, dtype=np.uint8)
        )

    def subset(self, indices: np.ndarray) -> "OverlapPairs":
        return OverlapPairs(self.images[indices], self.labels[indices])
