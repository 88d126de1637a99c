"""What synthetic pairs are made of, cut out of the real training metaphases only: isolated
single chromosomes with their real halo, and background patches free of chromosomes.

Only metaphases of training cases (:func:`amfl.data.adir.split_of_case`) are accepted; any
other is refused, so no validation or test chromosome can reach a synthetic training pair.

Halo width, measured on the 211 singles this module cuts from the training cases (DAPI
above the local background, over the chromosome's median signal, median over singles): 0.34
at 1 px outside the expert mask, 0.19 at 2 px, 0.11 at 3, 0.07 at 4, 0.05 at 5, 0.04 at 6,
0.03 at 7. With a median signal of 108 grey levels, the halo is down to about 3 grey levels
at :data:`HALO_PX`, the size of the camera noise (std 1-2), so a single keeps every pixel
within that distance of its mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from amfl.connectivity import FOUR_CONNECTED
from amfl.data.adir import OVERLAP_VALUE, Metaphase, split_of_case

#: The only split whose chromosomes and backgrounds may be used.
TRAINING_SPLIT = "train"
#: Pixels of real halo kept around the expert mask (see the module docstring).
HALO_PX = 8
#: A single must lie farther than this from any other labelled pixel, so that its kept halo
#: (HALO_PX) holds no light of a neighbour's halo (HALO_PX as well).
ISOLATION_PX = 2 * HALO_PX
#: The local background is the median of the pixels this far from every labelled pixel,
#: within this margin around the chromosome's box.
BACKGROUND_GAP_PX = ISOLATION_PX
BACKGROUND_MARGIN_PX = 3 * HALO_PX
#: Something unlabelled (a nucleus, debris) is near a single if a halo pixel farther than
#: this from the mask is brighter than this fraction of the chromosome's median signal.
NEAR_HALO_PX = 3
UNLABELLED_FRACTION = 0.5
#: Side of the background patches and of the synthetic canvas, pixels.
PATCH_SIZE = 128
#: Background patches are taken every this many pixels (rows and columns) of a metaphase.
PATCH_STRIDE = 8
#: A patch holds no pixel within this distance of a labelled one (no chromosome halo).
PATCH_CLEARANCE_PX = ISOLATION_PX
#: A patch is refused if a pixel is this many grey levels above the median of the image's
#: chromosome-free pixels: an unlabelled nucleus or debris, not plain background.
PATCH_BRIGHT_LEVEL = 40


@dataclass(frozen=True)
class Single:
    """One isolated chromosome. ``signal``: (H, W) float32, DAPI minus the local background
    (grey levels), its real halo kept within HALO_PX of the mask and 0 beyond; ``mask``:
    (H, W) bool, the expert's pixels; ``source``: metaphase name, for tracing."""

    signal: np.ndarray
    mask: np.ndarray
    source: str


@dataclass(frozen=True)
class BackgroundPatches:
    """Chromosome-free windows of real metaphases: ``images`` the DAPI planes (uint8),
    ``corners`` (N, 3) int (image index, top row, left column) of each PATCH_SIZE window."""

    images: tuple[np.ndarray, ...]
    corners: np.ndarray

    def patch(self, index: int) -> np.ndarray:
        """Window ``index`` as a (PATCH_SIZE, PATCH_SIZE) uint8 view."""
        image, top, left = self.corners[index]
        return self.images[image][top : top + PATCH_SIZE, left : left + PATCH_SIZE]


def training_metaphases(metaphases: Iterable[Metaphase]) -> list[Metaphase]:
    """The metaphases of training cases, in the given order."""
    return [metaphase for metaphase in metaphases if split_of_case(metaphase.case) == TRAINING_SPLIT]


def _refuse_non_training(metaphases: Iterable[Metaphase]) -> list[Metaphase]:
    """The metaphases as a list; ValueError naming the first that is not a training case."""
    metaphases = list(metaphases)
    for metaphase in metaphases:
        if split_of_case(metaphase.case) != TRAINING_SPLIT:
            raise ValueError(
                f"{metaphase.name} belongs to the {split_of_case(metaphase.case)!r} split of case "
                f"{metaphase.case}: only training cases may feed synthetic pairs"
            )
    return metaphases


def _window(box: tuple[slice, slice], margin: int, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """``box`` grown by ``margin`` pixels on every side, or None where that leaves the image."""
    rows, columns = box
    top, left = rows.start - margin, columns.start - margin
    bottom, right = rows.stop + margin, columns.stop + margin
    if top < 0 or left < 0 or bottom > shape[0] or right > shape[1]:
        return None
    return slice(top, bottom), slice(left, right)


def _cut_single(
    dapi: np.ndarray, labelled: np.ndarray, component: int, box: tuple[slice, slice]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(signal, mask) of one single-class component, or None if it is not isolated (another
    labelled pixel or a bright unlabelled object near it, or too near the image border)."""
    window = _window(box, BACKGROUND_MARGIN_PX, dapi.shape)
    if window is None:
        return None
    local = labelled[window]
    mask = local == component
    outside = ndimage.distance_transform_edt(~mask)
    if (outside[(local > 0) & ~mask] <= ISOLATION_PX).any():
        return None
    grey = dapi[window].astype(np.float32)
    far = ndimage.distance_transform_edt(local == 0) > BACKGROUND_GAP_PX
    signal = grey - np.float32(np.median(grey[far]))
    median = float(np.median(signal[mask]))
    halo = outside <= HALO_PX
    if median <= 0 or (signal[halo & (outside > NEAR_HALO_PX)] > UNLABELLED_FRACTION * median).any():
        return None
    keep = ndimage.find_objects(halo.astype(np.uint8))[0]
    return np.where(halo, signal, 0)[keep], mask[keep]


def cut_singles(metaphases: Iterable[Metaphase]) -> list[Single]:
    """Every isolated single chromosome of the given training metaphases: a 4-connected
    cluster of labelled pixels holding one class and no overlap pixel, farther than
    ISOLATION_PX from any other labelled pixel and from the image border."""
    singles = []
    for metaphase in _refuse_non_training(metaphases):
        dapi, labels = metaphase.read()
        labelled, _ = ndimage.label(labels > 0, FOUR_CONNECTED)
        for component, box in enumerate(ndimage.find_objects(labelled), start=1):
            classes = np.unique(labels[box][labelled[box] == component])
            if len(classes) != 1 or classes[0] == OVERLAP_VALUE:
                continue
            cut = _cut_single(dapi, labelled, component, box)
            if cut is not None:
                singles.append(Single(*cut, source=metaphase.name))
    return singles


def _clear_corners(dapi: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K, 2) top-left corners, on the PATCH_STRIDE grid, of PATCH_SIZE windows with no pixel
    within PATCH_CLEARANCE_PX of a labelled one and none PATCH_BRIGHT_LEVEL grey levels above
    the image's background median (an unlabelled nucleus or debris)."""
    distance = cv2.distanceTransform((labels == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    clear = distance > PATCH_CLEARANCE_PX
    bright = dapi > np.median(dapi[clear]) + PATCH_BRIGHT_LEVEL
    counts = np.pad((~clear | bright).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    size = PATCH_SIZE
    inside = counts[size:, size:] - counts[:-size, size:] - counts[size:, :-size] + counts[:-size, :-size]
    return np.argwhere(inside[::PATCH_STRIDE, ::PATCH_STRIDE] == 0) * PATCH_STRIDE


def find_background_patches(metaphases: Iterable[Metaphase]) -> BackgroundPatches:
    """The chromosome-free PATCH_SIZE windows of the given training metaphases."""
    images, corners = [], []
    for metaphase in _refuse_non_training(metaphases):
        dapi, labels = metaphase.read()
        found = _clear_corners(dapi, labels)
        if len(found):
            corners.append(np.column_stack([np.full(len(found), len(images)), found]))
            images.append(dapi)
    if not corners:
        raise ValueError("no chromosome-free background patch in the given metaphases")
    return BackgroundPatches(tuple(images), np.concatenate(corners))
