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
   times the noise), where w is the metaphase's chromosome width; objects ``SPREAD_GAP``
   widths or more from the main spread (*other_spread*: another cell's; the spread holding
   the most chromosomes by the hand rule's count of step 4).
3. **Parts**: each object falls apart into parts at its intensity valleys (touching
   chromosomes are dimmer where they touch); parts cut at a band are merged again.
4. **How many in each part**: the learned part counter (:mod:`amfl.part_counter`, boosted
   trees fitted on the expert labels of the training cases) reads each part's shape,
   grey and neighbourhood (:mod:`amfl.metaphase_features`) and answers 0, 1, 2, 3 or 4+.
   A part of 0 beside counted parts is a piece of a chromosome cut at a band: it joins the
   part it touches most. An object whose parts are all 0 is set aside (*not_counted*: mostly
   a neighbouring cell's chromosomes, or debris). A spread of fewer parts than any training
   metaphase is counted by the hand rule instead (``metaphase_features.rule_count``), with a
   note. Two: the crop model is shown the part alone on a background of 0 and its labels
   give the two instances, which both own the overlap pixels (labels 1 + 3 and 2 + 3); if it
   does not separate them cleanly, two straight bars fitted to the skeleton's ends do,
   flagged for review. Three or more: split by shape (distance-transform watershed),
   flagged for review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from amfl import metaphase_features as features_
from amfl import metaphase_parts as parts_
from amfl.metaphase_candidates import SetAside, corners, find_candidates
from amfl.part_counter import PartCounter, load_part_counter
from amfl.segmentation import Segmenter

#: Each of the model's two chromosomes must hold this share of the part, and its largest
#: connected piece this share of it (a sanity check, not tuned), else shape decides.
MIN_INSTANCE_SHARE = 0.15
MIN_CONNECTED_SHARE = 0.75
#: Pixels of context around a part in the model's crop (background 0).
CROP_MARGIN = 8
OBJECT_KINDS = ("single", "pair", "cluster")
#: A part whose count the part counter gives a probability under this is flagged for review
#: (a round number, chosen before it was measured; not tuned).
UNSURE_BELOW = 0.7


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


def analyse_metaphase(grey: np.ndarray, segmenter: Segmenter, counter: PartCounter | None = None) -> MetaphaseResult:
    """Count and separate the chromosomes of one metaphase (bright chromosomes on a dark
    background; a light background is inverted first, with a note). ``counter``: the part
    counter (default: the bundled one, :data:`amfl.part_counter.BUNDLED_PART_COUNTER`)."""
    started = time.perf_counter()
    found = find_candidates(grey)
    counter = counter or load_part_counter()
    notes, set_aside = list(found.notes), list(found.set_aside)

    def result(chromosomes: list[Chromosome], records: list[MetaphaseObject], calls: int) -> MetaphaseResult:
        if not chromosomes:
            reason = "the image has no foreground" if np.isnan(found.width) else f"every object was set aside ({len(set_aside)})"
            notes.append(f"{NO_CHROMOSOMES}: {reason}")
        set_aside.sort(key=lambda s: s.object_id)
        return MetaphaseResult(
            found.grey.shape, chromosomes, records, set_aside, found.width, found.level, time.perf_counter() - started, calls, tuple(notes),
        )

    if not found.parts:
        return result([], [], 0)
    if len(found.parts) >= counter.config.min_parts:
        numbers, chances = counter.counts(features_.part_features(found.parts, found.objects, found.image, found.level, found.width))
    else:
        median_area = float(np.median([part.mask.sum() for part in found.parts]))
        numbers = np.array([features_.rule_count(part, median_area) for part in found.parts])
        chances = np.ones(len(numbers))
        notes.append(
            f"{len(found.parts)} parts: fewer than in any metaphase the part counter was fitted on "
            f"({counter.config.min_parts}), so the hand rule counted them"
        )
    splitter = _Splitter(found.grey, segmenter, found.width)
    chromosomes: list[Chromosome] = []
    records = []
    for number, members in _by_object(found.parts):
        box = members[0][1].box
        inside = found.objects[box] == number
        pieces = _absorb_empty_parts(members, numbers, chances)
        if not pieces:
            set_aside.append(SetAside(
                number, corners(box), int(inside.sum()), "not_counted",
                f"the part counter gives it no chromosome of this metaphase (p = {min(chances[i] for i, _ in members):.2f}): "
                "most such objects are a neighbouring cell's chromosomes or debris", inside,
            ))
            continue
        ids = []
        for mask, count, chance in pieces:
            first_id = len(chromosomes) + 1
            separated = splitter.instances(mask, box, count, touching=len(pieces) > 1)
            if chance < UNSURE_BELOW:
                unsure = f"the part counter is unsure of the count here (p = {chance:.2f} for {count})"
                separated = [(piece, by_model, True, f"{reason}; {unsure}" if reason else unsure) for piece, by_model, _, reason in separated]
            for index, (piece, by_model, review, reason) in enumerate(separated):
                partner = first_id + 1 - index if by_model and len(separated) == 2 else None
                chromosome = _chromosome(first_id + index, number, box, piece, by_model, review, reason, partner)
                chromosomes.append(chromosome)
                ids.append(chromosome.id)
        kind = OBJECT_KINDS[min(len(ids), 3) - 1]
        records.append(MetaphaseObject(number, corners(box), int(inside.sum()), kind, len(ids), tuple(ids)))
    return result(chromosomes, records, splitter.calls)


def _by_object(parts: list[features_.Part]) -> list[tuple[int, list[tuple[int, features_.Part]]]]:
    """(object id, [(index into parts, part)]) per object, in object order."""
    grouped: dict[int, list[tuple[int, features_.Part]]] = {}
    for index, part in enumerate(parts):
        grouped.setdefault(part.object_id, []).append((index, part))
    return sorted(grouped.items())


def _absorb_empty_parts(
    members: list[tuple[int, features_.Part]], numbers: np.ndarray, chances: np.ndarray,
) -> list[tuple[np.ndarray, int, float]]:
    """[(mask within the object's box, chromosomes, the counter's probability)] of one object:
    each part the counter gives no chromosome (a piece of a chromosome cut at a band) joins
    the counted part it touches most, or else the nearest one. Empty when no part of the
    object is counted."""
    counted = [(index, part) for index, part in members if numbers[index] > 0]
    if not counted:
        return []
    masks = {index: part.mask.copy() for index, part in counted}
    labels = np.zeros(members[0][1].mask.shape, np.int32)
    for index, part in members:
        labels[part.mask] = index + 1
    touching = parts_.contacts(labels)
    for index, part in members:
        if numbers[index] > 0:
            continue
        contact = {owner: touching.get(tuple(sorted((index + 1, owner + 1))), 0) for owner in masks}
        if max(contact.values()) > 0:
            owner = max(contact, key=contact.get)
        else:
            distance = ndimage.distance_transform_edt(~part.mask)
            owner = min(masks, key=lambda o: float(distance[masks[o]].min()))
        masks[owner] |= part.mask
    return [(masks[index], int(numbers[index]), float(chances[index])) for index, _ in counted]


class _Splitter:
    """A part's chromosome masks, given how many it holds (asks the model about pairs)."""

    def __init__(self, grey: np.ndarray, segmenter: Segmenter, width: float) -> None:
        self.grey, self.segmenter, self.width = grey, segmenter, width
        self.calls = 0

    def instances(self, part: np.ndarray, box: tuple[slice, slice], count: int, touching: bool):
        """[(mask within box, separated_by_model, review, reason)] for one part of ``count``
        chromosomes."""
        touching_note = "touching neighbours: separated at an intensity valley"
        if count <= 1:
            return [(part, False, touching, touching_note if touching else "")]
        area = int(part.sum())
        if count == 2:
            first, second = parts_.model_pair(self._model_labels(part, box), part)
            if min(first.sum(), second.sum()) >= MIN_INSTANCE_SHARE * area and parts_.compact(first, MIN_CONNECTED_SHARE) and parts_.compact(second, MIN_CONNECTED_SHARE):
                reason = "overlapping pair separated by the model" + ("; " + touching_note if touching else "")
                return [(first, True, touching, reason), (second, True, touching, reason)]
            pieces = parts_.cross_split(part, self.width) or parts_.shape_split(part, 2, self.width)
            note = "pair: the model did not separate it cleanly, split by shape (two bars)"
            return [(piece, False, True, note) for piece in pieces]
        pieces = parts_.shape_split(part, count, self.width)
        note = f"cluster of about {count} chromosomes, split by shape"
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
