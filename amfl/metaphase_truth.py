"""The expert's truth for the whole-metaphase mode: the chromosomes of an ADIR label image,
and how the pipeline's objects compare with them (count errors by kind, review-flag coverage).
Used by the evaluation (:mod:`amfl.metaphase_eval`) and by the part counter's fitting
(:mod:`amfl.train_part_counter`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amfl.data.adir import OVERLAP_VALUE
from amfl.metaphase import MetaphaseResult

EIGHT = np.ones((3, 3), bool)
#: Pieces of one class smaller than this (pixels) are label specks, not chromosomes.
MIN_PIECE_PX = 10
#: A chromosome is found by a region holding at least this share of its labelled pixels. On
#: the training cases, 39 chromosomes had 26-66 % of their pixels in one part and most of the
#: rest in the background, just outside the foreground's edge (the expert's masks are wider).
FOUND_SHARE = 0.25
REVIEW_COVERAGE = ("objects_wrong", "objects_wrong_flagged", "objects_right", "objects_right_flagged")
FAILURES = {
    "over_split": "one chromosome counted as several (cut at a band or centromere, or a single taken for a pair)",
    "under_split": "touching or overlapping chromosomes counted as fewer",
    "unlabelled_counted": "an object the expert did not label was counted (a neighbouring cell's chromosome, debris)",
    "set_aside_chromosomes": "expert chromosomes inside an object set aside (a chromosome on a nucleus)",
    "missed": "expert chromosomes outside every object (too faint for the foreground)",
}


def expert_chromosomes(labels: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The expert's chromosomes as (mask, count) groups. Per class, 8-connected pieces of at
    least ``MIN_PIECE_PX`` (a crossing chromosome cuts a piece in two, the overlap pixels
    (255) carry no class); pieces of one class that border the same overlap blob are one
    group, counted ceil(n/2) (2 pieces: one chromosome crossed; 3-4: two homologues crossing)."""
    blobs, _ = ndimage.label(labels == OVERLAP_VALUE, EIGHT)
    groups = []
    for value in np.unique(labels[(labels > 0) & (labels != OVERLAP_VALUE)]):
        pieces, count = ndimage.label(labels == value, EIGHT)
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        kept = [number for number in range(1, count + 1) if sizes[number] >= MIN_PIECE_PX]
        touches = {}
        for number in kept:
            ring = ndimage.binary_dilation(pieces == number, EIGHT) & (blobs > 0)
            touches[number] = set(np.unique(blobs[ring]).tolist())
        seen: set[int] = set()
        for number in kept:
            if number in seen:
                continue
            group, stack = [], [number]
            while stack:
                piece = stack.pop()
                if piece in seen:
                    continue
                seen.add(piece)
                group.append(piece)
                stack.extend(other for other in kept if other not in seen and touches[piece] & touches[other])
            groups.append((np.isin(pieces, group), (len(group) + 1) // 2))
    return groups


def per_region(regions: np.ndarray, groups: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Expert chromosomes per region of a label map (index 0: in no region): each group goes
    to the region holding most of its pixels, if that region holds at least ``FOUND_SHARE``
    of them. The background is not a rival: the expert's masks are wider than the
    foreground, so a chromosome found whole can have most of its labelled pixels outside it."""
    counts = np.zeros(int(regions.max()) + 1, int)
    for mask, count in groups:
        ids, pixels = np.unique(regions[mask], return_counts=True)
        pixels[ids == 0] = 0
        best = int(np.argmax(pixels))
        counts[ids[best] if pixels[best] >= FOUND_SHARE * mask.sum() else 0] += count
    return counts


def object_map(result: MetaphaseResult) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) maps of the pipeline's counted objects (by object id) and set-aside objects."""
    counted, aside = np.zeros(result.shape, np.int32), np.zeros(result.shape, np.int32)
    for chromosome in result.chromosomes:
        counted[result.full_mask(chromosome)] = chromosome.object_id
    for item in result.set_aside:
        top, left, bottom, right = item.box
        aside[top:bottom, left:right][item.mask] = item.object_id
    return counted, aside


def _expert_per_object(result: MetaphaseResult, groups: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """Expert chromosomes per region (counted objects by id, then set-aside objects after the
    largest counted id) and that offset."""
    counted, aside = object_map(result)
    regions = np.where(counted > 0, counted, np.where(aside > 0, aside + counted.max() + 1, 0))
    return per_region(regions, groups), int(counted.max()) + 1


def compare_with_expert(result: MetaphaseResult, groups: list[tuple[np.ndarray, int]]) -> dict[str, dict[str, int]]:
    """One metaphase against the expert: ``failures`` (count errors by kind, in chromosomes)
    and ``review_coverage`` (how well the review flags point at them), from one matching of
    the expert groups to the pipeline's objects."""
    expert, offset = _expert_per_object(result, groups)
    truth = {o.id: int(expert[o.id]) if o.id < len(expert) else 0 for o in result.objects}
    return {"failures": _failures(result, truth, expert, offset), "review_coverage": _review_coverage(result, truth)}


def _failures(result: MetaphaseResult, truth: dict[int, int], expert: np.ndarray, offset: int) -> dict[str, int]:
    tally = dict.fromkeys(FAILURES, 0)
    for o in result.objects:
        if truth[o.id] == 0:
            tally["unlabelled_counted"] += o.count
        elif o.count > truth[o.id]:
            tally["over_split"] += o.count - truth[o.id]
        elif o.count < truth[o.id]:
            tally["under_split"] += truth[o.id] - o.count
    tally["set_aside_chromosomes"] = int(expert[offset:].sum())
    tally["missed"] = int(expert[0])
    return tally


def _review_coverage(result: MetaphaseResult, truth: dict[int, int]) -> dict[str, int]:
    """Counted objects whose count differs from the expert's (``wrong``) or not (``right``),
    and how many of each carry a flag."""
    flagged = {c.object_id for c in result.chromosomes if c.review}
    tally = dict.fromkeys(REVIEW_COVERAGE, 0)
    for o in result.objects:
        outcome = "right" if o.count == truth[o.id] else "wrong"
        tally[f"objects_{outcome}"] += 1
        tally[f"objects_{outcome}_flagged"] += o.id in flagged
    return tally
