"""Two chromosomes that cross: the four arms around their overlap, named straight through.

Where two chromosomes cross, four arms leave their overlap, two of each, and each chromosome's
two arms leave it on opposite sides. The network names every pixel from what it sees around
it, and often gives an arm beyond the crossing the partner's name: on the Pommier validation
pairs the bundled default loses about a point of Dice to pieces named the wrong way (``python
-m amfl.pommier_errors``, "Dice best piece naming"). ``Preprocessor.crossing_arms`` renames
such arms from the geometry alone: of the three ways to pair the four arms, the one whose two
pairs point most nearly in opposite directions is taken, each pair gets one name (the way
round that changes fewer pixels), and every chromosome pixel of the cluster takes the name of
the arm nearest to it.

Only a cluster (8-connected labelled pixels) with a single overlap part and exactly four arms
is renamed. With three arms, one chromosome ending in the overlap, the most nearly opposite two
were the same chromosome less often than the network's own names said on the Pommier
validation pairs, so three arms, like two, keep their names. An arm is a 4-connected piece of
chromosome 1 or 2 pixels outside the overlap grown by :data:`ARM_GAP` pixels (the gap keeps two
arms that meet at a corner of the overlap apart), bordering that grown overlap, with at least
:data:`MIN_ARM_PIXELS` pixels. Its direction is the mean position of its pixels within
:data:`ARM_REACH` pixels of the overlap, seen from the overlap's centre of mass, so that an
arm that bends further out does not turn it.

Where the network paints a large overlap part that is no crossing, for instance between two
chromosomes lying end to end, the chromosome pixels beside it can form thin slivers that hug
its edge rather than leave it. ``Preprocessor.crossing_arm_reach`` asks each arm's farthest
pixel to lie at least that many pixels from the overlap; a sliver that does not reach so far is
no arm (it takes the name of the arm nearest to it), so such a cluster seldom has four arms.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from scipy import ndimage

from amfl.connectivity import EIGHT_CONNECTED, FOUR_CONNECTED
from amfl.naming import FIRST, OVERLAP, SECOND, each_map

#: Pixels by which the overlap is grown before the arms are cut apart.
ARM_GAP = 1
#: Pixels from the overlap within which an arm's direction is measured.
ARM_REACH = 8
#: Fewest pixels of an arm; a smaller piece takes the name of the arm nearest to it.
MIN_ARM_PIXELS = 4
#: The three ways to pair four arms.
PAIRINGS = (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))


def crossing_arms(labels: np.ndarray, overlap: np.ndarray, min_reach: int = 0) -> tuple[np.ndarray, list[int]]:
    """The arms around ``overlap`` (a boolean map of one overlap part) in ``labels``: a map of
    the chromosome pixels' pieces outside the grown overlap (0 off them) and the pieces that
    count as arms, those whose farthest pixel lies ``min_reach`` pixels or more from the overlap."""
    grown = ndimage.binary_dilation(overlap, EIGHT_CONNECTED, iterations=ARM_GAP)
    chromosome = (labels == FIRST) | (labels == SECOND)
    pieces, count = ndimage.label(chromosome & ~grown, structure=FOUR_CONNECTED)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    border = ndimage.binary_dilation(grown, EIGHT_CONNECTED) & ~grown
    bordering = np.bincount(pieces[border], minlength=count + 1) > 0
    reach = np.zeros(count + 1)
    reach[1:] = ndimage.maximum(ndimage.distance_transform_edt(~overlap), pieces, np.arange(1, count + 1))
    return pieces, [piece for piece in range(1, count + 1)
                    if bordering[piece] and sizes[piece] >= MIN_ARM_PIXELS and reach[piece] >= min_reach]


def arm_directions(pieces: np.ndarray, arms: Sequence[int], overlap: np.ndarray) -> np.ndarray:
    """(len(arms), 2) unit vectors from the overlap's centre of mass to each arm's pixels
    within :data:`ARM_REACH` pixels of the overlap."""
    centre = np.array(ndimage.center_of_mass(overlap))
    near = ndimage.distance_transform_edt(~overlap) <= ARM_REACH
    directions = []
    for arm in arms:
        inside = (pieces == arm) & near
        offset = np.argwhere(inside if inside.any() else pieces == arm).mean(axis=0) - centre
        directions.append(offset / max(float(np.linalg.norm(offset)), 1e-9))
    return np.array(directions)


def straight_pairing(directions: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Of :data:`PAIRINGS`, the one whose pairs point most nearly in opposite directions (the
    lowest sum of the cosines between the two arms of each pair)."""
    return min(PAIRINGS, key=lambda pairing: sum(float(directions[a] @ directions[b]) for a, b in pairing))


def name_straight_through(labels: np.ndarray, min_reach: int = 0) -> np.ndarray:
    """A (H, W) label map in which each cluster with one overlap part and four arms (each
    reaching ``min_reach`` pixels or more from it) has its chromosome pixels renamed so that
    opposite arms share a name; the map itself when no cluster qualifies."""
    named = labels
    clusters, _ = ndimage.label(labels > 0, structure=EIGHT_CONNECTED)
    for number, box in enumerate(ndimage.find_objects(clusters), start=1):
        grown_box = tuple(slice(max(part.start - ARM_GAP - 1, 0), part.stop + ARM_GAP + 1) for part in box)
        inside = clusters[grown_box] == number
        cluster = np.where(inside, labels[grown_box], 0)
        overlap_parts, count = ndimage.label(cluster == OVERLAP, structure=EIGHT_CONNECTED)
        if count != 1:
            continue
        overlap = overlap_parts > 0
        pieces, arms = crossing_arms(cluster, overlap, min_reach)
        if len(arms) != len(PAIRINGS) + 1:
            continue
        renamed = _renamed(cluster, pieces, arms, straight_pairing(arm_directions(pieces, arms, overlap)))
        if np.array_equal(renamed[inside], cluster[inside]):
            continue
        if named is labels:
            named = labels.copy()
        named[grown_box][inside] = renamed[inside]
    return named


def _renamed(
    cluster: np.ndarray, pieces: np.ndarray, arms: Sequence[int], pairing: tuple[tuple[int, int], ...],
) -> np.ndarray:
    """``cluster`` with each pair of arms of ``pairing`` given one name (the way round that
    changes fewer arm pixels) and every chromosome pixel the name of its nearest arm."""
    def changed(names: tuple[int, int]) -> int:
        return sum(int(((pieces == arms[index]) & (cluster != name)).sum())
                   for pair, name in zip(pairing, names, strict=True) for index in pair)

    names = min(((FIRST, SECOND), (SECOND, FIRST)), key=changed)
    name_of_piece = np.zeros(pieces.max() + 1, cluster.dtype)
    for pair, name in zip(pairing, names, strict=True):
        name_of_piece[[arms[index] for index in pair]] = name
    arm_map = np.where(np.isin(pieces, arms), pieces, 0)
    nearest = ndimage.distance_transform_edt(arm_map == 0, return_distances=False, return_indices=True)
    nearest_name = name_of_piece[arm_map[tuple(nearest)]]
    chromosome = (cluster == FIRST) | (cluster == SECOND)
    return np.where(chromosome, nearest_name, cluster)


def name_straight_through_batch(labels: np.ndarray, enabled: bool, min_reach: int = 0) -> np.ndarray:
    """:func:`name_straight_through` of every map of a (..., H, W) stack when ``enabled``."""
    if not enabled:
        return labels
    return each_map(labels, partial(name_straight_through, min_reach=min_reach))
