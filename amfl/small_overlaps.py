"""Overlap parts that cannot be a crossing, given back to the chromosome around them.

On real touching pairs, where two chromosomes only meet, a network trained on crossings
paints overlap where there is none: specks along the seam, and blobs inside one chromosome;
with overlap absent from the truth, each costs a quarter of the pair's mean Dice (``python -m
amfl.overlap_sweep`` measures it). Three tests, saved with a model in its
:class:`~amfl.preprocessing.Preprocessor`, say which overlap part (4-connected) is one of
these: fewer pixels than ``min_overlap_pixels`` (a speck); a border on which one chromosome
holds less than ``min_overlap_border_share`` of the chromosome pixels (one-sided: where two
chromosomes cross, both run into their overlap); or a mean intensity below
``min_overlap_brightness`` times that of the chromosome pixels bordering it (two stacked
chromosomes give more light than one). 0 turns a test off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amfl.naming import FIRST, OVERLAP, SECOND, each_map


@dataclass(frozen=True)
class StrayOverlapTests:
    """The three tests of an overlap part; a part failing any one of them is merged."""

    min_pixels: int = 0
    min_border_share: float = 0.0
    min_brightness: float = 0.0

    @property
    def active(self) -> bool:
        return self.min_pixels > 0 or self.min_border_share > 0 or self.min_brightness > 0

    def stray(self, pixels: int, first: int, second: int, brightness: float) -> bool:
        """Whether a part of ``pixels`` pixels, bordered by ``first`` and ``second`` pixels of
        the two chromosomes, ``brightness`` times as bright as them, is no crossing."""
        one_sided = first + second > 0 and min(first, second) < self.min_border_share * (first + second)
        return pixels < self.min_pixels or one_sided or brightness < self.min_brightness


@dataclass(frozen=True)
class OverlapPart:
    """One 4-connected overlap part of a label map: ``box`` (slices one pixel wider than the
    part, clipped to the map), ``inside`` (its pixels within ``box``), ``ring`` (the pixels
    bordering it within ``box``) and ``around`` (the labels of the ring's pixels)."""

    box: tuple[slice, ...]
    inside: np.ndarray
    ring: np.ndarray
    around: np.ndarray

    @property
    def first(self) -> int:
        """Ring pixels of chromosome 1."""
        return int((self.around == FIRST).sum())

    @property
    def second(self) -> int:
        """Ring pixels of chromosome 2."""
        return int((self.around == SECOND).sum())


def overlap_parts(labels: np.ndarray) -> Iterator[OverlapPart]:
    """Each 4-connected overlap part of a (H, W) label map, with the pixels bordering it."""
    parts, _ = ndimage.label(labels == OVERLAP)
    for index, box in enumerate(ndimage.find_objects(parts), start=1):
        grown = tuple(slice(max(side.start - 1, 0), side.stop + 1) for side in box)
        inside = parts[grown] == index
        ring = ndimage.binary_dilation(inside) & ~inside
        yield OverlapPart(grown, inside, ring, labels[grown][ring])


def merge_overlap_parts(labels: np.ndarray, is_stray: Callable[[OverlapPart], bool]) -> np.ndarray:
    """A (H, W) label map with each overlap part for which ``is_stray`` holds relabelled as the
    chromosome that borders it most (background when none borders it)."""
    merged = labels.copy()
    for part in overlap_parts(labels):
        if is_stray(part):
            first, second = part.first, part.second
            merged[part.box][part.inside] = 0 if first + second == 0 else (FIRST if first >= second else SECOND)
    return merged


def merge_stray_overlaps(labels: np.ndarray, images: np.ndarray, tests: StrayOverlapTests) -> np.ndarray:
    """A (H, W) label map with each overlap part that fails one of ``tests`` merged
    (:func:`merge_overlap_parts`). ``images`` (H, W) are the intensities the network saw
    (background 0), for the brightness test."""
    if not tests.active:
        return labels

    def fails(part: OverlapPart) -> bool:
        chromosome = images[part.box][part.ring][(part.around == FIRST) | (part.around == SECOND)]
        level = float(chromosome.mean()) if chromosome.size else 0.0
        brightness = float(images[part.box][part.inside].mean()) / level if level > 0 else np.inf
        return tests.stray(int(part.inside.sum()), part.first, part.second, brightness)

    return merge_overlap_parts(labels, fails)


def merge_stray_overlaps_batch(labels: np.ndarray, images: np.ndarray, tests: StrayOverlapTests) -> np.ndarray:
    """:func:`merge_stray_overlaps` of every map of a (..., H, W) stack, with its image."""
    if not tests.active:
        return labels
    return each_map(labels, lambda one, image: merge_stray_overlaps(one, image, tests), images)
