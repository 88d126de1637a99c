"""Whole-metaphase mode: a DAPI metaphase in, its chromosomes counted and separated out.

    result = analyse_metaphase(grey, Segmenter.from_pretrained("space/model"))
    result.count, result.chromosomes, result.set_aside

Steps (image steps in :mod:`amfl.metaphase_parts`; every rule and number measured on the
training cases of the ADIR metaphases only, see ``results/metaphase/README.md``):

1. **Foreground**: the image minus a morphological opening (uneven background, glow), a
   local threshold (30 % of the brightest value within 21 px and 30 % of the Otsu level),
   a 3 x 3 opening, holes filled; objects are 8-connected.
2. **Not counted**: *nuclei* (at least ``NUCLEUS_AREA`` w^2, solidity at least
   ``NUCLEUS_SOLIDITY``, a disc of ``NUCLEUS_INSCRIBED`` widths fits inside: a chromosome
   cluster that large is never that convex and thick), *debris* (under ``DEBRIS_AREA``
   w^2), *faint* blobs (peak under ``FAINT_PEAK`` times the Otsu level or ``NOISE_PEAK``
   times the noise), where w is the metaphase's chromosome width; after counting, objects
   ``SPREAD_GAP`` widths or more from the main spread (*other_spread*: another cell's).
3. **Parts**: each object falls apart into parts at its intensity valleys (touching
   chromosomes are dimmer where they touch); parts cut at a band are merged again.
4. **Pairs and clusters**: a part over ``CANDIDATE_AREA`` times the median part area whose
   skeleton has ``PAIR_ENDS`` or more ends holds several chromosomes, about area /
   (``AREA_PER_CHROMOSOME`` x median part area) but at least 2. Two: the crop model is shown
   the part alone on a background of 0 and its labels give the two instances, which both own
   the overlap pixels (labels 1 + 3 and 2 + 3); if it does not separate them cleanly, two
   straight bars fitted to the skeleton's ends do, flagged for review. Three or more: split
   by shape (distance-transform watershed), flagged for review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from amfl import metaphase_parts as parts_
from amfl.segmentation import Segmenter

#: Nucleus: area in w^2, solidity, and inscribed-disc diameter in widths, all at least these
#: (training cases: 63 of 65 unlabelled blobs of 10 w^2 and more; no chromosome object).
NUCLEUS_AREA, NUCLEUS_SOLIDITY, NUCLEUS_INSCRIBED = 10.0, 0.8, 3.0
#: Debris: area under this many w^2 (63 unlabelled specks; no expert chromosome lost).
DEBRIS_AREA = 0.4
#: Faint: peak under this share of the Otsu level (7 unlabelled blobs; no chromosome lost),
#: or under this many times the background noise (robust sigma of the corrected image;
#: training chromosomes peak at 27 sigma and more, blobs of pure noise at about 7).
FAINT_PEAK = 0.6
NOISE_PEAK = 10.0
#: A part holds several chromosomes when it is larger than this many median part areas and
#: its skeleton has at least ``PAIR_ENDS`` ends a width apart (a single chromosome has two:
#: 572 of 611 such large single parts of the training cases; 41 of 45 overlapping pairs
#: have three or more).
CANDIDATE_AREA = 1.2
PAIR_ENDS = 3
#: How many: the part's area over this many median part areas, at least 2. These numbers:
#: count MAE against ISCN 3.47 on the training cases (every part counted as one: 4.47); the
#: best of the 288-setting grid, 3.33, tested the model's overlap share instead of the ends,
#: which finds only about half of the overlapping pairs.
AREA_PER_CHROMOSOME = 2.5
#: Each of the model's two chromosomes must hold this share of the part, and its largest
#: connected piece this share of it (a sanity check, not tuned), else shape decides.
MIN_INSTANCE_SHARE = 0.15
MIN_CONNECTED_SHARE = 0.75
#: Pixels of context around a part in the model's crop (background 0).
CROP_MARGIN = 8
OBJECT_KINDS = ("single", "pair", "cluster")
SET_ASIDE_KINDS = ("nucleus", "debris", "faint", "other_spread")
#: Objects this many widths or more from the main spread (the group of objects closer than
#: that holding the most chromosomes) are another cell's (training cases: count MAE against
#: ISCN 3.38 -> 3.24; 4 widths: 4.16, 8: 3.27).
SPREAD_GAP = 6.0


@dataclass(frozen=True)
class Chromosome:
    """One counted chromosome: ``mask`` is its pixels within ``box`` (top, left, bottom,
    right; rows top..bottom-1); overlap pixels belong to both chromosomes of a pair."""

    id: int
    object_id: int
    box: tuple[int, int, int, int]
    mask: np.ndarray
    area: int
    #: Skeleton length, pixels.
    length: float
    separated_by_model: bool
    review: bool
    reason: str
    #: The other chromosome of a pair the model separated (they share the overlap), else None.
    partner: int | None = None

    def record(self) -> dict[str, object]:
        return {
            "id": self.id, "object_id": self.object_id, "box": list(self.box), "area": self.area,
            "length": round(self.length, 1), "separated_by_model": self.separated_by_model,
            "partner": self.partner, "review": self.review, "reason": self.reason,
        }


@dataclass(frozen=True)
class MetaphaseObject:
    """A connected object of the foreground that was counted: how many chromosomes, and which."""

    id: int
    box: tuple[int, int, int, int]
    area: int
    kind: str
    count: int
    chromosome_ids: tuple[int, ...]


@dataclass(frozen=True)
class SetAside:
    """An object not counted, and why."""

    object_id: int
    box: tuple[int, int, int, int]
    area: int
    kind: str
    reason: str
    #: The object's pixels within ``box``.
    mask: np.ndarray


@dataclass(frozen=True)
class MetaphaseResult:
    """The analysis of one metaphase (pixel coordinates of the input image)."""

    shape: tuple[int, int]
    chromosomes: list[Chromosome]
    objects: list[MetaphaseObject]
    set_aside: list[SetAside]
    #: Chromosome width w (pixels) and Otsu level of the corrected image the rules used.
    width: float
    level: float
    seconds: float
    model_calls: int
    notes: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.chromosomes)

    def instance_layers(self) -> tuple[np.ndarray, np.ndarray]:
        """Two (H, W) int32 maps of chromosome ids (0: none): every chromosome pixel in the
        first; the second holds the second chromosome where two overlap."""
        first, second = np.zeros(self.shape, np.int32), np.zeros(self.shape, np.int32)
        for chromosome in self.chromosomes:
            top, left, bottom, right = chromosome.box
            window_first, window_second = first[top:bottom, left:right], second[top:bottom, left:right]
            taken = chromosome.mask & (window_first > 0)
            window_second[taken] = chromosome.id
            window_first[chromosome.mask & ~taken] = chromosome.id
        return first, second

    def full_mask(self, chromosome: Chromosome) -> np.ndarray:
        """One chromosome's mask at the image's size."""
        mask = np.zeros(self.shape, bool)
        top, left, bottom, right = chromosome.box
        mask[top:bottom, left:right] = chromosome.mask
        return mask

    def summary(self) -> dict[str, object]:
        """Everything but the masks, JSON-ready."""
        return {
            "count": self.count, "shape": list(self.shape), "width_px": round(self.width, 2),
            "otsu_level": round(self.level, 2), "seconds": round(self.seconds, 3), "model_calls": self.model_calls,
            "notes": list(self.notes), "chromosomes": [chromosome.record() for chromosome in self.chromosomes],
            "objects": [
                {"id": o.id, "box": list(o.box), "area": o.area, "kind": o.kind, "count": o.count,
                 "chromosome_ids": list(o.chromosome_ids)} for o in self.objects
            ],
            "set_aside": [
                {"object_id": s.object_id, "box": list(s.box), "area": s.area, "kind": s.kind, "reason": s.reason}
                for s in self.set_aside
            ],
        }


NO_CHROMOSOMES = "no chromosomes found"


def checked_grey(grey: np.ndarray) -> np.ndarray:
    """A (H, W) finite numeric image as float32; anything else is a ValueError that says why."""
    array = np.asarray(grey)
    if array.ndim != 2:
        raise ValueError(f"a metaphase must be a 2-D grey image (H, W); got an array of shape {array.shape}")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"a metaphase must hold numbers (integer or float grey values); got {array.dtype}")
    if min(array.shape) < 8:
        raise ValueError(f"a metaphase of {array.shape[0]} x {array.shape[1]} pixels is too small (at least 8 x 8)")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("the metaphase has NaN or infinite pixels")
    return array


def analyse_metaphase(grey: np.ndarray, segmenter: Segmenter) -> MetaphaseResult:
    """Count and separate the chromosomes of one metaphase (bright chromosomes on a dark
    background; a light background is inverted first, with a note)."""
    started = time.perf_counter()
    grey = checked_grey(grey)
    notes: list[str] = []
    border = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    low, high = np.percentile(grey, [0.1, 99.9])
    if border - low > 2 * (high - border):  # the long tail is dark: dark chromosomes on light
        grey = float(grey.max()) - grey
        notes.append("light background detected: inverted so chromosomes are bright")
    flat = grey - parts_.background(grey)
    image = parts_.corrected(flat)
    level = parts_.otsu_level(image)
    mask = parts_.foreground(image, level) if level > 0 else np.zeros(grey.shape, bool)
    objects, _ = ndimage.label(mask, parts_.EIGHT_CONNECTED)
    boxes = ndimage.find_objects(objects)
    width = parts_.chromosome_width(mask)
    noise = 1.4826 * float(np.median(np.abs(image - np.median(image))))  # robust sigma of the background
    set_aside = [] if np.isnan(width) else _nuclei(objects, boxes, width, image, NOISE_PEAK * noise)
    if set_aside:
        nuclei = np.isin(objects, [s.object_id for s in set_aside])
        width = parts_.chromosome_width(mask & ~nuclei)
    if np.isnan(width):
        notes.append(f"{NO_CHROMOSOMES}: the image has no foreground")
        return MetaphaseResult(grey.shape, [], [], set_aside, float("nan"), level, time.perf_counter() - started, 0, tuple(notes))
    set_aside_ids = {s.object_id for s in set_aside}
    found = []  # (object id, box, part masks within box)
    for number, box in enumerate(boxes, start=1):
        if number in set_aside_ids:
            continue
        inside = objects[box] == number
        area, peak = int(inside.sum()), float(image[box][inside].max())
        if area < DEBRIS_AREA * width**2:
            set_aside.append(SetAside(number, _corners(box), area, "debris", f"{area} px, under {DEBRIS_AREA} w^2 = {DEBRIS_AREA * width**2:.0f} px", inside))
        elif peak < max(FAINT_PEAK * level, NOISE_PEAK * noise):
            set_aside.append(SetAside(
                number, _corners(box), area, "faint",
                f"peak {peak:.1f} under {FAINT_PEAK} x the Otsu level ({level:.1f}) or {NOISE_PEAK:.0f} x the noise ({noise:.2f})", inside,
            ))
        else:
            labelled = parts_.split_object(inside, image[box], parts_.OTSU_SHARE * level, width)
            found.append((number, box, [labelled == part for part in range(1, int(labelled.max()) + 1)]))
    set_aside.sort(key=lambda s: s.object_id)
    areas = [int(part.sum()) for _, _, masks in found for part in masks]
    if not areas:
        notes.append(f"{NO_CHROMOSOMES}: every object was set aside ({len(set_aside)})")
        return MetaphaseResult(grey.shape, [], [], set_aside, width, level, time.perf_counter() - started, 0, tuple(notes))
    counter = _Counter(grey, segmenter, width, float(np.median(areas)))
    counted = [(number, box, [counter.instances(part, box, touching=len(masks) > 1) for part in masks]) for number, box, masks in found]
    main = parts_.main_spread(objects, [(number, sum(map(len, pieces))) for number, _, pieces in counted], width, SPREAD_GAP)
    chromosomes: list[Chromosome] = []
    records = []
    for number, box, part_pieces in counted:
        inside = objects[box] == number
        if number not in main:
            total = sum(map(len, part_pieces))
            set_aside.append(SetAside(
                number, _corners(box), int(inside.sum()), "other_spread",
                f"{total} chromosome(s) {SPREAD_GAP:.0f} widths or more from the main spread: another cell's", inside,
            ))
            continue
        ids = []
        for pieces in part_pieces:
            first_id = len(chromosomes) + 1
            for index, (piece, by_model, review, reason) in enumerate(pieces):
                partner = first_id + 1 - index if by_model and len(pieces) == 2 else None
                chromosome = _chromosome(first_id + index, number, box, piece, by_model, review, reason, partner)
                chromosomes.append(chromosome)
                ids.append(chromosome.id)
        kind = OBJECT_KINDS[min(len(ids), 3) - 1]
        records.append(MetaphaseObject(number, _corners(box), int(inside.sum()), kind, len(ids), tuple(ids)))
    set_aside.sort(key=lambda s: s.object_id)
    if not chromosomes:
        notes.append(NO_CHROMOSOMES)
    seconds = time.perf_counter() - started
    return MetaphaseResult(grey.shape, chromosomes, records, set_aside, width, level, seconds, counter.calls, tuple(notes))


def _nuclei(objects: np.ndarray, boxes: list, width: float, image: np.ndarray, noise_floor: float) -> list[SetAside]:
    """Objects that are interphase nuclei by the nucleus rule (and stand above the noise)."""
    found = []
    for number, box in enumerate(boxes, start=1):
        inside = objects[box] == number
        area = int(inside.sum())
        if area < NUCLEUS_AREA * width**2 or float(image[box][inside].max()) < noise_floor:
            continue
        solidity = area / max(_convex_area(inside), 1)
        inscribed = 2 * float(ndimage.distance_transform_edt(np.pad(inside, 1)).max())
        if solidity >= NUCLEUS_SOLIDITY and inscribed >= NUCLEUS_INSCRIBED * width:
            found.append(SetAside(
                number, _corners(box), area, "nucleus",
                f"{area / width**2:.0f} w^2, solidity {solidity:.2f}, {inscribed / width:.1f} widths thick: "
                "a round, solid blob far larger than a chromosome", inside,
            ))
    return found


def _convex_area(mask: np.ndarray) -> int:
    from skimage.morphology import convex_hull_image

    return int(convex_hull_image(mask).sum())


class _Counter:
    """How many chromosomes a part holds, and their masks (asks the model for large parts)."""

    def __init__(self, grey: np.ndarray, segmenter: Segmenter, width: float, median_area: float) -> None:
        self.grey, self.segmenter, self.width, self.median_area = grey, segmenter, width, median_area
        self.calls = 0

    def instances(self, part: np.ndarray, box: tuple[slice, slice], touching: bool):
        """[(mask within box, separated_by_model, review, reason)] for one part."""
        touching_note = "touching neighbours: separated at an intensity valley"
        area = int(part.sum())
        if area <= CANDIDATE_AREA * self.median_area or len(parts_.skeleton_ends(part, self.width)) < PAIR_ENDS:
            return [(part, False, touching, touching_note if touching else "")]
        count = max(2, int(round(area / (AREA_PER_CHROMOSOME * self.median_area))))
        if count == 2:
            first, second = parts_.model_pair(self._model_labels(part, box), part)
            if min(first.sum(), second.sum()) >= MIN_INSTANCE_SHARE * area and parts_.compact(first, MIN_CONNECTED_SHARE) and parts_.compact(second, MIN_CONNECTED_SHARE):
                reason = "overlapping pair separated by the model" + ("; " + touching_note if touching else "")
                return [(first, True, touching, reason), (second, True, touching, reason)]
            pieces = parts_.cross_split(part, self.width) or parts_.shape_split(part, 2, self.width)
            note = "pair: the model did not separate it cleanly, split by shape (two bars)"
            return [(piece, False, True, note) for piece in pieces]
        pieces = parts_.shape_split(part, count, self.width)
        note = f"cluster of about {count} chromosomes ({area / self.median_area:.1f} median areas), split by shape"
        return [(piece, False, True, note) for piece in pieces]

    def _model_labels(self, part: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        """The model's labels for the part alone: its grey as the microscope gave it, on a
        background of 0 (the ``masked`` input of :mod:`amfl.data.real_pairs`), cut with
        ``CROP_MARGIN`` pixels of context; returned at the box's size, 0 off the part."""
        rows, columns = np.nonzero(part)
        height, width = self.grey.shape
        top, left = box[0].start + max(rows.min() - CROP_MARGIN, 0), box[1].start + max(columns.min() - CROP_MARGIN, 0)
        bottom = min(box[0].start + rows.max() + 1 + CROP_MARGIN, height)
        right = min(box[1].start + columns.max() + 1 + CROP_MARGIN, width)
        inside = np.zeros((bottom - top, right - left), bool)
        placed = np.zeros(self.grey.shape, bool)
        placed[box][part] = True
        inside[:] = placed[top:bottom, left:right]
        crop = np.where(inside, self.grey[top:bottom, left:right], 0).astype(np.float32)
        self.calls += 1
        window = np.zeros(self.grey.shape, np.uint8)
        window[top:bottom, left:right] = np.where(inside, self.segmenter.segment_grey(crop).labels, 0)
        return window[box]


def _chromosome(
    number: int, object_id: int, box: tuple[slice, slice], piece: np.ndarray, by_model: bool, review: bool, reason: str,
    partner: int | None,
) -> Chromosome:
    rows, columns = np.nonzero(piece)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    mask = piece[r0:r1, c0:c1].copy()
    corner = (box[0].start + int(r0), box[1].start + int(c0), box[0].start + int(r1), box[1].start + int(c1))
    return Chromosome(number, object_id, corner, mask, int(mask.sum()), parts_.skeleton_length(mask), by_model, review, reason, partner)


def _corners(box: tuple[slice, slice]) -> tuple[int, int, int, int]:
    return (box[0].start, box[1].start, box[0].stop, box[1].stop)
