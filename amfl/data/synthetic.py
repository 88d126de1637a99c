"""Synthetic overlapping pairs that look like the microscope: two real single chromosomes
of the training metaphases (:mod:`amfl.data.singles`), composed with Pommier's recipe on
a real background patch.

The recipe (``shared/data/README.md``, step 8), adapted to the real crossings of the
training cases (figures: ``benchmarks/bench_synthetic.py``):

- two different singles, drawn with a weight of area ** AREA_WEIGHT_POWER (long
  chromosomes cross more often: the real pairs are larger than the average single);
- rotation of signal and mask together: cubic spline for the signal, linear then threshold
  at 0.5 for the mask; the angles 0-160 in steps of 20 degrees are computed once per single,
  a random 180-degree turn and mirror (free array views) complete the circle; the two axes
  must cross at MIN_CROSSING_DEGREES or more (real crossings: median 71 degrees, 10th
  percentile 30; lying along each other is rare);
- the second chromosome goes at a random translation fraction, uniform in TRANSLATION_RANGE
  on each axis, of the free range around the first (0.5 centres it on the first);
  a result is kept only if the masks overlap, by at least ``min_overlap`` pixels (default:
  20 px, from which the real overlaps are crossings, not touching slivers);
- the light adds: the two signals (DAPI minus their local background) are summed in the
  units of :func:`to_summing` and added to a real chromosome-free DAPI window of a training
  metaphase, which brings its own level, gradient and noise; the sum is rounded and
  clipped to 0..255 like the 8-bit camera (saturation);
- labels: the smaller chromosome (area incl. overlap, after rotation) is 1, the larger 2,
  the overlap 3.

Touching pairs (``kind="touching"``): every pair above overlaps, as every Pommier pair does,
and a model trained on them learns to paint overlap wherever two chromosomes meet; on the
real touching pairs it paints stray overlap along the contact line. A touching pair draws
its two singles uniformly (real touching pairs are no larger than the average single) and
poses them as for a crossing, at any angle; then the second slides away in a random
direction, a pixel at a time, until the masks overlap in a sliver of at most N pixels (N
drawn per pair from 0..MAX_SLIVER_PX). The sliver's light adds, and its pixels go
to the nearer chromosome, as the expert's sliver does on the real touching pairs
(:func:`amfl.data.real_pairs.split_sliver`); labels 1 and 2 only. A pair is kept if
MIN_CONTACT_PX or more pixels of the two share an edge. Measured against the 83 real
touching training pairs (``benchmarks/bench_synthetic.py --kind touching --neighbours``,
median [10th, 90th percentile]): contact 19 [10, 29] px against 19 [8, 39]; contact over the
rest of the pair, mean DAPI, 0.78 [0.58, 1.01] against 0.78 [0.47, 0.99]; sliding to no
overlap at all (and drawing singles by area, as crossings do) gave 6 px and 0.56.

Canvas: PATCH_SIZE x PATCH_SIZE (128, the network's input side). The pair's mask box is
centred on it (offset ``(canvas - size) // 2``); a placement whose box plus the kept halo
(HALO_PX on each side) does not fit is dropped, so no halo is ever cut by the canvas edge.

Neighbours (``neighbours``, default none): a real 128 x 128 window around a pair is crowded
(background median 9 against 6 grey levels, std 1.69 against 1.18 on isolated synthetic
pairs), so further singles, other than the pair's two, can be put around the pair: drawn
uniformly (any chromosome of the metaphase, not weighted by area), posed like the pair's,
their mask centre uniform on the canvas, so they may be cut by its edge; their mask keeps
NEIGHBOUR_GAP_PX from the pair's masks and does not overlap an earlier neighbour. Their light
adds like the pair's; their pixels stay label 0, as the neighbours of a real pair do.
With REAL_NEIGHBOURS (the count of the real windows), the share of the window farther than
16 px from the pair that is 20 grey levels above the border median is 0.225 (10th-90th
percentile 0.14-0.32) against 0.224 (0.13-0.38) in the real windows, its std 46 against 38
grey levels; the border median stays lower, 7 against 12: the real background near
chromosomes is brighter than the chromosome-free patches. 20,000 pairs take 19 s on 2 cores
(5 s alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from amfl.data.adir import Metaphase, list_metaphases
from amfl.data.pairs import OverlapPairs
from amfl.data.real_pairs import MIN_OVERLAP_PX, PAIR_KINDS, split_sliver
from amfl.data.singles import (
    HALO_PX,
    PATCH_SIZE,
    BackgroundPatches,
    Single,
    cut_singles,
    find_background_patches,
    training_metaphases,
)

#: Angles computed by spline rotation, degrees; the other half-turn is a 180-degree flip.
ANGLES = tuple(range(0, 180, 20))
#: Translation fractions of the free range around the first. The recipe's 0.25-0.75 puts
#: the crossing nearer the chromosomes' ends than in the real pairs (overlap centre along
#: the nearer-centred / other chromosome, 0 = centre, 1 = end, medians: 0.22 / 0.54 against
#: real 0.15 / 0.37); this range gives 0.13 / 0.38.
TRANSLATION_RANGE = (0.35, 0.65)
#: Smallest angle between the two chromosomes' long axes, degrees (real 10th percentile).
MIN_CROSSING_DEGREES = 30.0
#: Mask rotation: linear interpolation, then pixels at least this much inside are kept.
MASK_THRESHOLD = 0.5
#: Singles are drawn with a weight of area ** this (median areas incl. the overlap of the
#: real pairs: 594 and 898 px; of the singles: 436 px; of the synthetic pairs: 501 and
#: 799 px, as the canvas drops more of the largest).
AREA_WEIGHT_POWER = 2.0
#: Range of the 8-bit camera.
CAMERA_MAX = 255
#: Label values of the four classes.
SMALLER, LARGER, OVERLAP = 1, 2, 3
#: Give up after this many placements per requested pair (the ingredients cannot overlap).
MAX_ATTEMPTS_PER_PAIR = 50
#: Neighbours per canvas, drawn uniformly in this inclusive range: the 10th-90th percentile
#: of the labelled components other than the pair that intersect the 128 x 128 window
#: centred on a real overlapping pair of the training cases (50 pairs: median 7, mean 6.7;
#: the uniform draw: mean 6.5).
REAL_NEIGHBOURS = (4, 9)
#: Smallest distance from a neighbour's mask to the pair's masks, pixels (real windows: the
#: nearest neighbour is 2 px from the pair at the 10th percentile, 4.7 px at the median).
NEIGHBOUR_GAP_PX = 2
#: Placements tried per neighbour before it is left out (a crowded canvas).
NEIGHBOUR_ATTEMPTS = 10
#: Touching pairs: the second chromosome slides until the masks overlap in a sliver of at
#: most N pixels, N drawn uniformly per pair from 0..MAX_SLIVER_PX (real touching pairs:
#: bench_synthetic.py --kind touching).
MAX_SLIVER_PX = 40
#: Touching pairs: pixels of either chromosome that must share an edge with the other (a
#: contact line, not a corner).
MIN_CONTACT_PX = 3
#: Edge neighbours (4-connectivity) for the contact test.
_EDGE_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
#: Disc of radius NEIGHBOUR_GAP_PX: the pair's masks dilated by it are closed to neighbours.
_GAP_DISC = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEIGHBOUR_GAP_PX + 1,) * 2)


@dataclass(frozen=True)
class Rotated:
    """One single at one angle: ``light`` (H, W) float32, its signal in summing units
    (:func:`to_summing`); ``mask`` (H, W) bool, with the mask's box at rows/columns
    HALO_PX..-HALO_PX (so the halo fits around it); ``area`` of the mask, pixels;
    ``orientation`` of the long axis, degrees in -90..90 (rows down, columns right)."""

    light: np.ndarray
    mask: np.ndarray
    area: int
    orientation: float


@dataclass(frozen=True)
class Ingredients:
    """What pairs are drawn from: ``rotations[i][a]`` is single i at ANGLES[a];
    ``cumulative`` the running sum of the singles' drawing weights, ending at 1."""

    rotations: tuple[tuple[Rotated, ...], ...]
    cumulative: np.ndarray
    patches: BackgroundPatches


def to_summing(signal: np.ndarray) -> np.ndarray:
    """Grey levels above background -> the units in which two chromosomes' light adds: the
    fourth power (a gamma of 1/4), sign kept so that the halo's noise stays noise.

    Adding grey levels, as the Pommier recipe does, makes the synthetic overlap 1.82 times as
    bright as the single parts, with 30% of it saturated (medians); the real crossings of the
    training cases are only 1.37 times as bright (10th-90th percentile 1.05-1.9), and even
    their 90th percentile has just 1.3% of the overlap saturated. Gamma 1/4 gives 1.38
    (1/3: 1.43, 1/5: 1.36), saturated 90th percentile 7%. Powers of 4 and square roots are
    fast."""
    return signal**3 * np.abs(signal)


def from_summing(summed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_summing`: summing units -> grey levels above background."""
    return np.copysign(np.sqrt(np.sqrt(np.abs(summed))), summed)


def orientation(mask: np.ndarray) -> float:
    """Angle of the mask's long axis (second moments), degrees in -90..90."""
    rows, columns = np.nonzero(mask)
    rows, columns = rows - rows.mean(), columns - columns.mean()
    return float(np.degrees(0.5 * np.arctan2(2 * (rows * columns).mean(), (columns**2).mean() - (rows**2).mean())))


def rotate_single(single: Single, angle: float) -> Rotated:
    """Rotate signal (cubic spline) and mask (linear, thresholded) together, keep the signal
    within HALO_PX of the rotated mask, and crop to the mask box plus HALO_PX."""
    padded_signal, padded_mask = (np.pad(array, HALO_PX) for array in (single.signal, single.mask.astype(np.float32)))
    signal = ndimage.rotate(padded_signal, angle, order=3)
    mask = ndimage.rotate(padded_mask, angle, order=1) >= MASK_THRESHOLD
    signal = np.pad(np.where(ndimage.distance_transform_edt(~mask) <= HALO_PX, signal, 0), HALO_PX)
    mask = np.pad(mask, HALO_PX)
    rows, columns = ndimage.find_objects(mask.astype(np.uint8))[0]
    box = slice(rows.start - HALO_PX, rows.stop + HALO_PX), slice(columns.start - HALO_PX, columns.stop + HALO_PX)
    return Rotated(to_summing(signal[box].astype(np.float32)), mask[box], int(mask.sum()), orientation(mask))


def prepare(singles: Sequence[Single], patches: BackgroundPatches) -> Ingredients:
    """Every single rotated once per angle of ANGLES, and its drawing weight."""
    if len(singles) < 2:
        raise ValueError(f"synthetic pairs need at least two singles, got {len(singles)}")
    rotations = tuple(tuple(rotate_single(single, angle) for angle in ANGLES) for single in singles)
    weights = np.array([np.count_nonzero(single.mask) for single in singles], np.float64) ** AREA_WEIGHT_POWER
    cumulative = np.cumsum(weights)
    return Ingredients(rotations, cumulative / cumulative[-1], patches)


def ingredients_from(metaphases: Iterable[Metaphase] | None = None) -> Ingredients:
    """Singles and background patches of the training metaphases among ``metaphases``
    (default: all of the ADIR set); metaphases of other splits are left out here."""
    chosen = training_metaphases(list_metaphases() if metaphases is None else metaphases)
    return prepare(cut_singles(chosen), find_background_patches(chosen))


def _draw_two(cumulative: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """Two different singles, each drawn by its weight (``cumulative``: running sum to 1)."""
    first = int(np.searchsorted(cumulative, rng.random(), side="right"))
    second = first
    while second == first:
        second = int(np.searchsorted(cumulative, rng.random(), side="right"))
    return first, second


def _pose(rotations: tuple[Rotated, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(light, mask, area, orientation) of a random angle, turned by 180 degrees and/or
    mirrored left-right (array views; a mirror negates the orientation)."""
    rotated = rotations[rng.integers(len(rotations))]
    turn, mirror = rng.integers(2, size=2) > 0
    rows = slice(None, None, -1) if turn else slice(None)
    columns = slice(None, None, -1) if turn != mirror else slice(None)
    axis = -rotated.orientation if mirror else rotated.orientation
    return rotated.light[rows, columns], rotated.mask[rows, columns], rotated.area, axis


def crossing_angle(first: float, second: float) -> float:
    """Angle between two axes given by their orientations, degrees in 0..90."""
    difference = abs(first - second) % 180
    return min(difference, 180 - difference)


def _offset(first: int, second: int, fraction: float) -> int:
    """Position of the second mask box relative to the first along one axis, pixels: the
    free range runs from touching on one side (-second) to touching on the other (+first)."""
    return int(fraction * (first + second)) - second


def _boxes(
    shape_a: tuple[int, int], shape_b: tuple[int, int], shift: tuple[int, int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Canvas boxes of two posed arrays, the second's mask box at ``shift`` (rows, columns)
    from the first's, their mask boxes centred together; None if a halo leaves the canvas."""
    boxes_a, boxes_b = [], []
    for axis in (0, 1):
        low = min(0, shift[axis])
        size = max(shape_a[axis], shift[axis] + shape_b[axis]) - 2 * HALO_PX - low
        if size + 2 * HALO_PX > PATCH_SIZE:
            return None
        start = (PATCH_SIZE - size) // 2 - HALO_PX - low
        boxes_a.append(slice(start, start + shape_a[axis]))
        boxes_b.append(slice(start + shift[axis], start + shift[axis] + shape_b[axis]))
    return tuple(boxes_a), tuple(boxes_b)


def _background(patches: BackgroundPatches, rng: np.random.Generator) -> np.ndarray:
    """A random chromosome-free window in one of its 8 orientations (turns and mirrors)."""
    patch = np.rot90(patches.patch(int(rng.integers(len(patches.corners)))), int(rng.integers(4)))
    return patch[:, ::-1] if rng.integers(2) else patch


def _neighbour_range(neighbours: int | tuple[int, int]) -> tuple[int, int]:
    """A count or an inclusive (low, high) range of neighbours -> (low, high), checked."""
    low, high = (neighbours, neighbours) if isinstance(neighbours, int) else neighbours
    if not 0 <= low <= high:
        raise ValueError(f"neighbours must be a count >= 0 or a range low <= high, got {neighbours!r}")
    return low, high


def _on_canvas(shape: tuple[int, int], corner: np.ndarray) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(canvas box, array box) of an array of ``shape`` with its top-left ``corner`` (rows,
    columns; may lie off the canvas) at that point, both cut to the canvas (maybe empty)."""
    canvas, own = [], []
    for size, start in zip(shape, corner.tolist()):
        low, high = max(start, 0), min(start + size, PATCH_SIZE)
        canvas.append(slice(low, max(high, low)))
        own.append(slice(low - start, max(high, low) - start))
    return tuple(canvas), tuple(own)


def _add_neighbours(
    summed: np.ndarray, pair_mask: np.ndarray, count: int, pair: tuple[int, int], ingredients: Ingredients,
    rng: np.random.Generator,
) -> None:
    """Add the light of ``count`` neighbours to ``summed`` (canvas, summing units): singles
    other than the ``pair``'s, drawn uniformly, posed, their mask centre uniform on the canvas.
    A placement with no mask pixel on the canvas, or one within NEIGHBOUR_GAP_PX of
    ``pair_mask`` or on an earlier neighbour, is redrawn; after NEIGHBOUR_ATTEMPTS the
    neighbour is left out."""
    occupied = cv2.dilate(pair_mask.astype(np.uint8), _GAP_DISC).astype(bool)
    for _ in range(count):
        for _ in range(NEIGHBOUR_ATTEMPTS):
            index = int(rng.integers(len(ingredients.rotations)))
            if index in pair:
                continue
            light, mask, _, _ = _pose(ingredients.rotations[index], rng)
            centre = rng.integers(PATCH_SIZE, size=2)
            canvas, own = _on_canvas(mask.shape, centre - np.array(mask.shape) // 2)
            visible = mask[own]
            if not visible.any() or (occupied[canvas] & visible).any():
                continue
            occupied[canvas] |= visible
            summed[canvas] += light[own]
            break


def _slide_apart(
    mask_a: np.ndarray, mask_b: np.ndarray, shift: tuple[int, int], sliver: int, rng: np.random.Generator
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Slide the second mask from ``shift`` in a random direction, a pixel at a time, to the
    first place where it overlaps the first mask in ``sliver`` pixels or fewer: that place's
    canvas boxes, or None if a halo leaves the canvas first."""
    angle = rng.uniform(0, 2 * np.pi)
    step = np.array([np.sin(angle), np.cos(angle)])
    for distance in range(PATCH_SIZE):
        moved = tuple(int(value) for value in np.rint(np.add(shift, distance * step)))
        boxes = _boxes(mask_a.shape, mask_b.shape, moved)
        if boxes is None:
            return None
        canvas_a, canvas_b = np.zeros((2, PATCH_SIZE, PATCH_SIZE), bool)
        canvas_a[boxes[0]], canvas_b[boxes[1]] = mask_a, mask_b
        if np.count_nonzero(canvas_a & canvas_b) <= sliver:
            return boxes
    return None


def contact_pixels(labels: np.ndarray) -> np.ndarray:
    """Pixels of either chromosome (labels 1 and 2) that share an edge with the other, bool."""
    smaller, larger = (labels == value for value in (SMALLER, LARGER))
    grown_smaller, grown_larger = (cv2.dilate(mask.astype(np.uint8), _EDGE_CROSS).astype(bool) for mask in (smaller, larger))
    return (grown_smaller & larger) | (grown_larger & smaller)


def synthesise(
    count: int, ingredients: Ingredients, seed: int = 0, min_overlap: int = MIN_OVERLAP_PX,
    neighbours: int | tuple[int, int] = 0, kind: str = "overlapping",
) -> OverlapPairs:
    """``count`` synthetic pairs on PATCH_SIZE canvases: images (N, 128, 128) uint8 camera
    grey, labels (N, 128, 128) uint8 0-3, the same for the same seed, ingredients and
    ``neighbours`` (a count per canvas, or an inclusive range drawn uniformly per canvas,
    e.g. REAL_NEIGHBOURS; 0 draws nothing, so the pairs are those without the option).
    ``kind`` is one of PAIR_KINDS: "overlapping" pairs share ``min_overlap`` pixels or more;
    "touching" pairs only meet (labels 0-2; ``min_overlap`` does not apply)."""
    if kind not in PAIR_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PAIR_KINDS)}; got {kind!r}")
    touching = kind == "touching"
    # Touching pairs draw their singles uniformly: unlike crossings, they are no larger than
    # the average single (real training pairs, median areas: 352 and 592 px).
    singles = len(ingredients.rotations)
    cumulative = np.arange(1, singles + 1) / singles if touching else ingredients.cumulative
    low, high = _neighbour_range(neighbours)
    rng = np.random.default_rng(seed)
    images = np.empty((count, PATCH_SIZE, PATCH_SIZE), np.uint8)
    labels = np.empty_like(images)
    made = attempts = 0
    while made < count:
        if attempts >= MAX_ATTEMPTS_PER_PAIR * count:
            raise RuntimeError(
                f"only {made} of {count} pairs after {attempts} placements: singles too large or too few"
            )
        attempts += 1
        first, second = _draw_two(cumulative, rng)
        (light_a, mask_a, area_a, axis_a), (light_b, mask_b, area_b, axis_b) = (
            _pose(ingredients.rotations[i], rng) for i in (first, second)
        )
        fractions = rng.uniform(*TRANSLATION_RANGE, size=2)
        if not touching and crossing_angle(axis_a, axis_b) < MIN_CROSSING_DEGREES:
            continue
        inner_a, inner_b = (np.subtract(mask.shape, 2 * HALO_PX) for mask in (mask_a, mask_b))
        shift = tuple(_offset(inner_a[axis], inner_b[axis], fractions[axis]) for axis in (0, 1))
        if touching:
            boxes = _slide_apart(mask_a, mask_b, shift, int(rng.integers(MAX_SLIVER_PX + 1)), rng)
        else:
            boxes = _boxes(mask_a.shape, mask_b.shape, shift)
        if boxes is None:
            continue
        value_a, value_b = (SMALLER, LARGER) if area_a <= area_b else (LARGER, SMALLER)
        label = labels[made]
        label[:] = 0
        label[boxes[0]] = mask_a * np.uint8(value_a)
        label[boxes[1]] += mask_b * np.uint8(value_b)
        if touching:
            label[:] = split_sliver(label)
            if np.count_nonzero(contact_pixels(label)) < MIN_CONTACT_PX:
                continue
        elif np.count_nonzero(label[boxes[1]] == OVERLAP) < min_overlap:
            continue
        summed = np.zeros(label.shape, np.float32)
        summed[boxes[0]] += light_a
        summed[boxes[1]] += light_b
        background = _background(ingredients.patches, rng)
        extra = low if low == high else int(rng.integers(low, high + 1))
        if extra:
            _add_neighbours(summed, label > 0, extra, (first, second), ingredients, rng)
        image = background + from_summing(summed)
        images[made] = np.clip(np.rint(image), 0, CAMERA_MAX)
        made += 1
    return OverlapPairs(images, labels)
