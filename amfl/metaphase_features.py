"""Numbers that describe each part of a metaphase, for the learned part counter.

A part is what :func:`amfl.metaphase_parts.split_object` cuts an object into. How many
chromosomes a part holds (0 for a piece of a chromosome cut at a band, or an object of a
neighbouring cell; 1; 2 for an overlapping or touching pair; more for a cluster) is what
:mod:`amfl.part_counter` predicts from these features. Every length is in chromosome widths
``w``, every grey level relative to the Otsu level, and every area relative to ``w^2`` or the
median part, so the features carry over between magnifications and exposures, as the rules do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops

from amfl import metaphase_parts as parts_

#: A part is a pair candidate by the hand rule when it is larger than this many median
#: part areas and its skeleton has at least ``PAIR_ENDS`` ends a width apart (a single
#: chromosome has two: 572 of 611 such large single parts of the training cases; 41 of 45
#: overlapping pairs have three or more); it then holds about area / (``AREA_PER_CHROMOSOME``
#: median part areas), at least 2. The rule's count is one of the counter's features.
CANDIDATE_AREA = 1.2
PAIR_ENDS = 3
AREA_PER_CHROMOSOME = 2.5
#: Neighbourhood radii, in widths, for the density features.
NEAR_WIDTHS, FAR_WIDTHS = 10.0, 20.0
#: The nearest-part distance of a part that is alone in its metaphase, widths (far away).
ALONE_WIDTHS = 1000.0

FEATURES = (
    "rule_count", "area_w2", "area_median", "length_w", "skeleton_ends", "solidity", "eccentricity",
    "major_axis_w", "minor_axis_w", "thickness_w", "mean_grey", "peak_grey", "parts_in_object",
    "object_area_w2", "nearest_part_w", "third_nearest_part_w", "parts_within_near", "parts_within_far",
    "parts_in_spread", "distance_to_spread_centre", "contact_w",
)


@dataclass(frozen=True)
class Part:
    """One part of a counted object: its pixels within the object's box."""

    object_id: int
    box: tuple[slice, slice]
    mask: np.ndarray
    #: How many parts its object has.
    siblings: int
    #: Its skeleton's ends at least a width apart (:func:`amfl.metaphase_parts.skeleton_ends`),
    #: found once: the hand rule and the features both read them.
    ends: int


def rule_count(part: Part, median_area: float) -> int:
    """The hand rule's number of chromosomes in a part (see ``CANDIDATE_AREA``)."""
    area = int(part.mask.sum())
    if area <= CANDIDATE_AREA * median_area or part.ends < PAIR_ENDS:
        return 1
    return max(2, int(round(area / (AREA_PER_CHROMOSOME * median_area))))


def part_map(parts: list[Part], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 map: part ``i`` of the list is ``i + 1``, 0 elsewhere."""
    labels = np.zeros(shape, np.int32)
    for number, part in enumerate(parts, start=1):
        labels[part.box][part.mask] = number
    return labels


def part_features(parts: list[Part], objects: np.ndarray, image: np.ndarray, level: float, width: float) -> np.ndarray:
    """(n parts, len(FEATURES)) float64: each row one part of ``parts``, in the order of
    ``FEATURES``. ``objects`` is the image's object label map, ``image`` the corrected grey."""
    if not parts:
        return np.zeros((0, len(FEATURES)))
    areas = np.array([part.mask.sum() for part in parts], np.float64)
    median_area = float(np.median(areas))
    centres = np.array([np.argwhere(p.mask).mean(axis=0) + (p.box[0].start, p.box[1].start) for p in parts])
    spread_centre = np.average(centres, axis=0, weights=areas)
    spread_radius = max(float(np.median(np.linalg.norm(centres - spread_centre, axis=1))), width)
    contact_px = np.zeros(len(parts) + 1)
    for (first, second), pixel_pairs in parts_.contacts(part_map(parts, objects.shape)).items():
        contact_px[first] += pixel_pairs / 2
        contact_px[second] += pixel_pairs / 2
    rows = []
    for index, part in enumerate(parts):
        distances = np.delete(np.linalg.norm(centres - centres[index], axis=1), index) / width
        nearest = np.sort(distances) if len(distances) else np.array([ALONE_WIDTHS])
        props = regionprops(part.mask.astype(np.uint8), intensity_image=image[part.box])[0]
        thickness = 2 * float(ndimage.distance_transform_edt(np.pad(part.mask, 1)).max())
        rows.append((
            rule_count(part, median_area), areas[index] / width**2, areas[index] / median_area,
            parts_.skeleton_length(part.mask) / width, part.ends, props.solidity,
            props.eccentricity, props.axis_major_length / width, props.axis_minor_length / width, thickness / width,
            props.intensity_mean / level, props.intensity_max / level, part.siblings,
            int((objects[part.box] == part.object_id).sum()) / width**2, nearest[0], nearest[min(2, len(nearest) - 1)],
            int((distances < NEAR_WIDTHS).sum()), int((distances < FAR_WIDTHS).sum()), len(parts),
            float(np.linalg.norm(centres[index] - spread_centre)) / spread_radius, contact_px[index + 1] / width,
        ))
    return np.array(rows, np.float64)
