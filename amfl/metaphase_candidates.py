"""Steps 1-3 of the whole-metaphase mode (:mod:`amfl.metaphase`): the foreground, the objects
not counted and why (nuclei, debris, faint blobs, other spreads), and the parts of the rest.
The same path feeds the count and the fitting of the part counter (:mod:`amfl.train_part_counter`).
Every number here was measured on the training cases of the ADIR metaphases only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amfl import metaphase_features as features_
from amfl import metaphase_parts as parts_
from amfl.connectivity import EIGHT_CONNECTED

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
SET_ASIDE_KINDS = ("nucleus", "debris", "faint", "other_spread", "not_counted")
#: Objects this many widths or more from the main spread (the group of objects closer than
#: that holding the most chromosomes) are another cell's (training cases: count MAE against
#: ISCN 3.38 -> 3.24; 4 widths: 4.16, 8: 3.27).
SPREAD_GAP = 6.0


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


@dataclass(frozen=True)
class Candidates:
    """A metaphase up to its parts: what :func:`analyse_metaphase` counts, and what
    :mod:`amfl.train_part_counter` learns from (one path for both)."""

    grey: np.ndarray
    #: Background-corrected grey, its Otsu level, the chromosome width w (NaN: no foreground).
    image: np.ndarray
    level: float
    width: float
    #: Object label map (8-connected foreground) and the parts of the main spread's objects.
    objects: np.ndarray
    parts: list[features_.Part]
    set_aside: list[SetAside]
    notes: tuple[str, ...]


def find_candidates(grey: np.ndarray) -> Candidates:
    """Steps 1-3: foreground, objects not counted (nuclei, debris, faint, other spreads), and
    the parts of the rest (a light background is inverted first, with a note)."""
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
    objects, _ = ndimage.label(mask, EIGHT_CONNECTED)
    boxes = ndimage.find_objects(objects)
    width = parts_.chromosome_width(mask)
    noise = 1.4826 * float(np.median(np.abs(image - np.median(image))))  # robust sigma of the background
    set_aside = [] if np.isnan(width) else _nuclei(objects, boxes, width, image, NOISE_PEAK * noise)
    if set_aside:
        nuclei = np.isin(objects, [s.object_id for s in set_aside])
        width = parts_.chromosome_width(mask & ~nuclei)
    found: list[features_.Part] = []
    if np.isnan(width):
        return Candidates(grey, image, level, width, objects, found, set_aside, tuple(notes))
    set_aside_ids = {s.object_id for s in set_aside}
    for number, box in enumerate(boxes, start=1):
        if number in set_aside_ids:
            continue
        inside = objects[box] == number
        area, peak = int(inside.sum()), float(image[box][inside].max())
        if area < DEBRIS_AREA * width**2:
            set_aside.append(SetAside(number, corners(box), area, "debris", f"{area} px, under {DEBRIS_AREA} w^2 = {DEBRIS_AREA * width**2:.0f} px", inside))
        elif peak < max(FAINT_PEAK * level, NOISE_PEAK * noise):
            set_aside.append(SetAside(
                number, corners(box), area, "faint",
                f"peak {peak:.1f} under {FAINT_PEAK} x the Otsu level ({level:.1f}) or {NOISE_PEAK:.0f} x the noise ({noise:.2f})", inside,
            ))
        else:
            labelled = parts_.split_object(inside, image[box], parts_.OTSU_SHARE * level, width)
            for part in range(1, int(labelled.max()) + 1):
                mask = labelled == part
                found.append(features_.Part(number, box, mask, int(labelled.max()), len(parts_.skeleton_ends(mask, width))))
    if found:
        median_area = float(np.median([part.mask.sum() for part in found]))
        by_object: dict[int, int] = {}
        for part in found:
            by_object[part.object_id] = by_object.get(part.object_id, 0) + features_.rule_count(part, median_area)
        main = parts_.main_spread(objects, sorted(by_object.items()), width, SPREAD_GAP)
        for number in sorted(set(by_object) - main):
            box = boxes[number - 1]
            set_aside.append(SetAside(
                number, corners(box), int((objects[box] == number).sum()), "other_spread",
                f"{by_object[number]} chromosome(s) {SPREAD_GAP:.0f} widths or more from the main spread: another cell's",
                objects[box] == number,
            ))
        found = [part for part in found if part.object_id in main]
    set_aside.sort(key=lambda s: s.object_id)
    return Candidates(grey, image, level, width, objects, found, set_aside, tuple(notes))


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
                number, corners(box), area, "nucleus",
                f"{area / width**2:.0f} w^2, solidity {solidity:.2f}, {inscribed / width:.1f} widths thick: "
                "a round, solid blob far larger than a chromosome", inside,
            ))
    return found


def _convex_area(mask: np.ndarray) -> int:
    from skimage.morphology import convex_hull_image

    return int(convex_hull_image(mask).sum())


def corners(box: tuple[slice, slice]) -> tuple[int, int, int, int]:
    return (box[0].start, box[1].start, box[0].stop, box[1].stop)
