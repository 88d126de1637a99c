"""Rebuild Pommier's ``LowRes_13434_overlapping_pairs`` from the two source images.

Follows the published recipe step by step (``shared/data/README.md``); the parameters are
facts of that recipe, not tuning knobs. The library calls are the ones the original
generator used (OpenCV top-hat, scikit-image adaptive threshold and labelling, SciPy cubic
spline rotation), because the pixel placement of every sample depends on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from scipy import ndimage
from skimage import exposure, filters, measure, morphology, segmentation
from tqdm.auto import tqdm

from amfl.data.pairs import OverlapPairs
from amfl.data.sources import SourceImages

CROP_ROWS = slice(50, 900)
CROP_COLUMNS = slice(300, 1150)
TOPHAT_SIZE = {"dapi": 50, "cy3": 9}
TOPHAT_OFFSET = 5
THRESHOLD_BLOCK_SIZE = 221
OPENING_RADIUS = 5
BORDER_BUFFER = 3
EXPECTED_CHROMOSOMES = 46
KEEP_EVERY = 4
ANGLES = (0, 40, 80, 120, 160)
TRANSLATIONS = (0.25, 0.5, 0.75)
OVERLAP = 3
EXPECTED_SAMPLES = 13434
SAMPLE_SHAPE = (94, 93)


class RecipeError(RuntimeError):
    """An intermediate count of the recipe came out wrong: the inputs or libraries differ."""


def _tophat(image: np.ndarray, size: int) -> np.ndarray:
    """White top-hat with an elliptical element, minus the offset, clipped at 0 (uint8)."""
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    hat = cv2.morphologyEx(image, cv2.MORPH_TOPHAT, element)
    return np.clip(hat.astype(np.int16) - TOPHAT_OFFSET, 0, None).astype(np.uint8)


def segment_metaphase(sources: SourceImages) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-5: the uint8 intensity image and the labelled chromosome mask (850 x 850)."""
    dapi8, cy38 = (
        (channel[CROP_ROWS, CROP_COLUMNS] / 16.0).astype(np.uint8)
        for channel in (sources.dapi, sources.cy3)
    )
    dapi = _tophat(dapi8, TOPHAT_SIZE["dapi"])
    cy3 = _tophat(cy38, TOPHAT_SIZE["cy3"])
    mask = dapi > filters.threshold_local(dapi, THRESHOLD_BLOCK_SIZE, method="gaussian")
    mask = morphology.opening(mask, morphology.disk(OPENING_RADIUS))
    mask = segmentation.clear_border(mask, buffer_size=BORDER_BUFFER)
    labelled = measure.label(mask)
    if labelled.max() != EXPECTED_CHROMOSOMES:
        raise RecipeError(
            f"segmentation found {labelled.max()} chromosomes, the recipe expects "
            f"{EXPECTED_CHROMOSOMES}: check the source images and the OpenCV/scikit-image versions"
        )
    mean = (dapi.astype(np.float64) + cy3) / 2
    intensity = (255 * exposure.rescale_intensity(mean)).astype(np.uint8)
    return intensity, labelled


def centre_on_canvas(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack images centred on a zero canvas of their largest height and width.

    The offset is ``round((canvas - size) / 2)`` with Python's half-to-even rounding, as in
    the original generator; the canvas takes the first image's dtype.
    """
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    canvas = np.zeros((len(images), height, width) + images[0].shape[2:], images[0].dtype)
    for slot, image in zip(canvas, images):
        top, left = round((height - image.shape[0]) / 2), round((width - image.shape[1]) / 2)
        slot[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas


def cut_out_chromosomes(intensity: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Step 6: every chromosome by its bounding box, other labels zeroed, on one canvas."""
    cutouts = []
    for label, box in enumerate(ndimage.find_objects(labelled), start=1):
        grey = intensity[box].copy()
        grey[labelled[box] != label] = 0
        cutouts.append(grey)
    return centre_on_canvas(cutouts)


def select_chromosomes(cutouts: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Step 7: sort by area (non-zero pixels), keep every 4th, downsample by 2.

    Chromosomes of equal area collapse to the later one, as in the original dictionary.
    """
    by_area = {int(np.count_nonzero(cutout)): cutout for cutout in cutouts}
    return [by_area[area][::2, ::2] for area in sorted(by_area)[::KEEP_EVERY]]


def _crop_to_mask(image: np.ndarray) -> np.ndarray:
    """Crop a (H, W, 2) grey + mask image to the bounding box of its mask."""
    return image[ndimage.find_objects((image[..., 1] > 0).astype(np.uint8))[0]]


def _rotations(grey: np.ndarray, mask_value: int) -> list[np.ndarray]:
    """Grey + mask stack, cropped, then spline-rotated (grown to fit) by each angle."""
    stack = np.dstack([grey.astype(np.int64), mask_value * (grey > 0).astype(np.int64)])
    stack = _crop_to_mask(stack)
    return [_crop_to_mask(ndimage.rotate(stack, angle)) for angle in ANGLES]


def _place_pair(first: np.ndarray, second: np.ndarray, u: float, v: float) -> np.ndarray:
    """Put ``first`` at fraction (u, v) of the free range around ``second`` and add them."""
    (r0, c0), (r1, c1) = first.shape[:2], second.shape[:2]
    height, width = r1 + 2 * r0, c1 + 2 * c0
    merged = np.zeros((height, width, 2), dtype=np.int64)
    merged[r0 + 1 : r0 + r1 + 1, c0 + 1 : c0 + c1 + 1] = second
    moving = np.zeros_like(merged)
    moving[:r0, :c0] = first
    moving = np.roll(moving, int(u * (height - r0)), axis=0)
    moving = np.roll(moving, int(v * (width - c0)), axis=1)
    return _crop_to_mask(merged + moving)


def overlap_pair(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Step 8: the 225 placements of one pair (mask 1 = ``first``, 2 = ``second``),
    centred on the pair's own canvas, before any filtering. Shape (225, H, W, 2), int64."""
    placements = [
        _place_pair(a, b, u, v)
        for a, b in itertools.product(_rotations(first, 1), _rotations(second, 2))
        for u, v in itertools.product(TRANSLATIONS, TRANSLATIONS)
    ]
    return centre_on_canvas(placements)


def rebuild(sources: SourceImages, progress: bool = True) -> OverlapPairs:
    """Steps 1-10: the 13,434 overlapping pairs (94 x 93), in generation order, unshuffled."""
    intensity, labelled = segment_metaphase(sources)
    chromosomes = select_chromosomes(cut_out_chromosomes(intensity, labelled))
    pairs = list(itertools.combinations(chromosomes, 2))
    kept: list[np.ndarray] = []
    for first, second in tqdm(pairs, desc="overlapping pairs", unit="pair", disable=not progress):
        candidates = overlap_pair(first, second)
        kept.extend(candidates[(candidates[..., 1] == OVERLAP).any(axis=(1, 2))])
    samples = centre_on_canvas(kept)
    if samples.shape[:3] != (EXPECTED_SAMPLES, *SAMPLE_SHAPE):
        raise RecipeError(
            f"rebuild produced {samples.shape[0]} samples of {samples.shape[1:3]}, the recipe "
            f"expects {EXPECTED_SAMPLES} of {SAMPLE_SHAPE}: the libraries behave differently"
        )
    return OverlapPairs.from_stacked(samples)
