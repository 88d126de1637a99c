"""The paper's protocol (Section III.A.1): shuffle, 80/20 train/test, validation = last 25%
of train, only test samples that still contain overlap pixels are scored, and samples are
padded to 128 x 128 and scaled to 0..1 for the network.

The original file's order came from an unseeded shuffle and is lost, so ours is a seeded
permutation (seed 123, the paper's seed) that anyone can reproduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amfl.data.pairs import OverlapPairs
from amfl.preprocessing import Preprocessor

OVERLAP_LABEL = 3


@dataclass(frozen=True)
class SplitSizes:
    train: int
    validation: int
    test: int
    test_scored: int
    validation_scored: int


@dataclass(frozen=True)
class Splits:
    """``train`` excludes ``validation``; ``test_scored`` and ``validation_scored`` are the
    subsets of ``test`` and ``validation`` with overlap, the samples the protocol scores."""

    train: OverlapPairs
    validation: OverlapPairs
    test: OverlapPairs
    #: Positions (into the whole dataset, before shuffling) of every split's samples.
    indices: dict[str, np.ndarray]

    @property
    def test_scored(self) -> OverlapPairs:
        return with_overlap(self.test)

    @property
    def validation_scored(self) -> OverlapPairs:
        """Validation samples scored as the test is: a choice made on them aims at the test score."""
        return with_overlap(self.validation)

    def sizes(self) -> SplitSizes:
        return SplitSizes(
            len(self.train), len(self.validation), len(self.test), int(has_overlap(self.test.labels).sum()),
            int(has_overlap(self.validation.labels).sum()),
        )


def with_overlap(pairs: OverlapPairs) -> OverlapPairs:
    """The samples of ``pairs`` that the protocol scores: those with overlap pixels."""
    return pairs.subset(has_overlap(pairs.labels))


def has_overlap(labels: np.ndarray) -> np.ndarray:
    """Per sample: does its label map contain at least one overlap pixel?"""
    return (labels == OVERLAP_LABEL).any(axis=(-2, -1))


def split_indices(
    count: int, seed: int = 123, test_fraction: float = 0.2, validation_fraction: float = 0.25
) -> dict[str, np.ndarray]:
    """Seeded permutation cut into train / validation / test positions.

    Train+validation is the first ``floor((1 - test_fraction) * count)`` samples (10,747 of
    13,434, as in the paper); validation is the last ``round(validation_fraction * that)``.
    """
    for name, fraction in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0 < fraction < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(count)
    train_end = math.floor((1 - test_fraction) * count + 1e-9)
    validation_start = train_end - round(validation_fraction * train_end)
    return {
        "train": order[:validation_start],
        "validation": order[validation_start:train_end],
        "test": order[train_end:],
    }


def split_pairs(pairs: OverlapPairs, seed: int = 123, **fractions: float) -> Splits:
    """Split ``pairs`` by the paper's protocol; see :func:`split_indices` for the sizes."""
    indices = split_indices(len(pairs), seed, **fractions)
    return Splits(
        train=pairs.subset(indices["train"]),
        validation=pairs.subset(indices["validation"]),
        test=pairs.subset(indices["test"]),
        indices=indices,
    )


def model_arrays(pairs: OverlapPairs, preprocessor: Preprocessor) -> tuple[np.ndarray, np.ndarray]:
    """Network-ready arrays: images (N, 1, H, W) float32 in 0..1 and labels (N, H, W) int64,
    prepared by the model's ``preprocessor`` exactly as inference prepares one image (94 x 93
    samples are padded centred to 128 x 128); labels are padded with 0 (background)."""
    return preprocessor.prepare(pairs.images).images[:, None], preprocessor.pad_labels(pairs.labels).astype(np.int64)
