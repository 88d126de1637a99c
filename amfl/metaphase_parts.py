"""Image steps of the whole-metaphase mode (:mod:`amfl.metaphase`): foreground, chromosome
width, and the split of a connected object into parts by its intensity valleys.

Every length here is in units of the metaphase's own chromosome width ``w`` (median of twice
the distance to the background along the foreground's skeleton: 9-18 px on the ADIR
metaphases), every grey level relative to the image's Otsu level, so the rules carry over
between cases of different magnification and exposure. The numbers were measured on the
training cases of the ADIR metaphases only (``results/metaphase/README.md``).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.measure import regionprops
from skimage.morphology import skeletonize
from skimage.segmentation import watershed

from amfl.connectivity import EIGHT_CONNECTED, FOUR_CONNECTED

#: Background estimate: grey opening of the image shrunk by this factor...
BACKGROUND_SHRINK = 4
#: ... with a disc of this diameter in shrunk pixels (31 x 4 = 124 px: wider than any
#: chromosome and most nuclei, so the opening keeps only the slowly varying background).
BACKGROUND_DISC = 31
#: Gaussian smoothing of the background-corrected image, pixels (camera noise).
SMOOTHING_SIGMA = 1.0
#: A pixel is foreground where it exceeds this share of the brightest value within
#: ``LOCAL_MAX_DISC`` pixels (a local threshold: a dim chromosome beside a bright one keeps
#: its own edge, and a halo, dimmer than its chromosome, stays out)...
LOCAL_SHARE = 0.3
LOCAL_MAX_DISC = 21
#: ... and this share of the Otsu level of the corrected image (the noise floor).
OTSU_SHARE = 0.3
#: Splitting by intensity: the threshold inside an object rises by this factor per step...
SPLIT_STEP = 1.1
#: ... and a piece that comes apart counts when it holds this many w^2 of pixels and its
#: peak is at least ``SPLIT_CONTRAST`` times the level it came apart at.
SPLIT_MIN_AREA = 0.5
SPLIT_CONTRAST = 1.3
#: Two touching parts are one chromosome cut at a band or centromere (and merged again) when
#: the grey along their contact is at least this share of the dimmer part's peak...
MERGE_VALLEY = 0.5
#: ... the contact is at most this many widths long (a cut across one chromosome)...
MERGE_CONTACT = 0.7
#: ... and their long axes differ by at most this many degrees.
MERGE_ANGLE = 60.0


def background(grey: np.ndarray) -> np.ndarray:
    """The slowly varying background (uneven illumination, offset, glow): a grey opening of
    the image at 1/``BACKGROUND_SHRINK`` scale, smoothed and brought back to full size."""
    grey = grey.astype(np.float32)
    height, width = grey.shape
    shrink = BACKGROUND_SHRINK if min(height, width) >= 4 * BACKGROUND_SHRINK else 1
    small = cv2.resize(grey, (max(width // shrink, 1), max(height // shrink, 1)), interpolation=cv2.INTER_AREA)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BACKGROUND_DISC, BACKGROUND_DISC))
    estimate = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_OPEN, disc), (0, 0), BACKGROUND_DISC / 4)
    return cv2.resize(estimate, (width, height), interpolation=cv2.INTER_LINEAR)


def corrected(flat: np.ndarray) -> np.ndarray:
    """The background-subtracted image ``flat``, lightly smoothed (camera noise)."""
    return cv2.GaussianBlur(flat.astype(np.float32), (0, 0), SMOOTHING_SIGMA)


def otsu_level(image: np.ndarray) -> float:
    """Otsu's threshold of ``image``; 0 for a flat image."""
    if float(image.max()) <= float(image.min()):
        return 0.0
    return float(threshold_otsu(image))


def foreground(image: np.ndarray, level: float) -> np.ndarray:
    """Chromosome (and nucleus, debris) pixels of the corrected ``image``: the local
    threshold, a 3 x 3 opening against single noisy pixels, holes filled."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (LOCAL_MAX_DISC, LOCAL_MAX_DISC))
    local_max = cv2.dilate(image, disc)
    mask = (image > LOCAL_SHARE * local_max) & (image > OTSU_SHARE * level) & (image > 0)
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return ndimage.binary_fill_holes(opened.astype(bool))


def chromosome_width(mask: np.ndarray) -> float:
    """Median width of the foreground, pixels: twice the distance to the background along its
    skeleton (NaN without foreground)."""
    if not mask.any():
        return float("nan")
    padded = np.pad(mask, 1)
    distances = ndimage.distance_transform_edt(padded)[skeletonize(padded)]
    return float(np.median(2 * distances)) if distances.size else float("nan")


def skeleton_length(mask: np.ndarray) -> float:
    """Length of a mask's skeleton, pixels: straight links count 1, diagonal links (with no
    straight path round the corner) sqrt 2; at least 1."""
    s = skeletonize(np.pad(mask, 1))
    straight = int((s[:, 1:] & s[:, :-1]).sum() + (s[1:, :] & s[:-1, :]).sum())
    falling = s[1:, 1:] & s[:-1, :-1] & ~s[:-1, 1:] & ~s[1:, :-1]
    rising = s[1:, :-1] & s[:-1, 1:] & ~s[:-1, :-1] & ~s[1:, 1:]
    return max(straight + float(np.sqrt(2)) * int(falling.sum() + rising.sum()), 1.0)


def intensity_cores(mask: np.ndarray, image: np.ndarray, level: float, min_area: float) -> list[np.ndarray]:
    """The cores an object falls apart into as its threshold rises from ``level`` (a walk down
    the component tree): a piece counts once it holds ``min_area`` pixels and its peak is
    ``SPLIT_CONTRAST`` times the level it came apart at; smaller or flatter pieces are
    bands of the same chromosome and are dropped. One core: the object does not split."""
    cores, stack = [], [(mask, level)]
    while stack:
        region, level = stack.pop()
        while True:
            level *= SPLIT_STEP
            if level >= float(image[region].max()):
                cores.append(region)
                break
            pieces, count = ndimage.label((image > level) & region, FOUR_CONNECTED)
            areas = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
            peaks = np.asarray(ndimage.maximum(image, pieces, np.arange(1, count + 1)), dtype=np.float64)
            kept = np.flatnonzero((areas >= min_area) & (peaks >= SPLIT_CONTRAST * level)) + 1
            if len(kept) == 0:
                cores.append(region)
                break
            if len(kept) == 1:
                region = pieces == kept[0]
                continue
            stack.extend((pieces == number, level) for number in kept)
            break
    return cores


def split_object(mask: np.ndarray, image: np.ndarray, level: float, width: float) -> np.ndarray:
    """Parts of one object (``mask`` within its crop of the corrected ``image``) as a label
    map 1..n: one per intensity core, grown back to the object's pixels by a watershed of the
    grey, then neighbours that are one chromosome cut at a band merged again."""
    cores = intensity_cores(mask, image, level, SPLIT_MIN_AREA * width * width)
    if len(cores) == 1:
        return mask.astype(np.int32)
    markers = np.zeros(mask.shape, np.int32)
    for number, core in enumerate(cores, start=1):
        markers[core] = number
    parts = watershed(-image, markers, mask=mask).astype(np.int32)
    return merge_cut_parts(parts, image, width)


def contacts(parts: np.ndarray) -> dict[tuple[int, int], int]:
    """(p, q) with p < q -> number of 4-neighbour pixel pairs across their common border."""
    found: dict[tuple[int, int], int] = {}
    for first, second in ((parts[:, :-1], parts[:, 1:]), (parts[:-1, :], parts[1:, :])):
        across = (first != second) & (first > 0) & (second > 0)
        low, high = np.minimum(first[across], second[across]), np.maximum(first[across], second[across])
        keys, counts = np.unique(low.astype(np.int64) * 1_000_003 + high, return_counts=True)
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            pair = (key // 1_000_003, key % 1_000_003)
            found[pair] = found.get(pair, 0) + count
    return found


def merge_cut_parts(parts: np.ndarray, image: np.ndarray, width: float) -> np.ndarray:
    """Merge, best first, touching parts that look like one chromosome cut across: bright
    contact (``MERGE_VALLEY``), short contact (``MERGE_CONTACT``), aligned (``MERGE_ANGLE``).
    Returns the parts renumbered 1..n."""
    parts = parts.copy()
    while True:
        props = {prop.label: prop for prop in regionprops(parts, intensity_image=image)}
        best, best_valley = None, -1.0
        for (p, q), pixel_pairs in contacts(parts).items():
            if pixel_pairs / 2 > MERGE_CONTACT * width:
                continue
            angle = abs(np.degrees(props[p].orientation - props[q].orientation)) % 180
            if min(angle, 180 - angle) > MERGE_ANGLE:
                continue
            near_q = cv2.dilate((parts == q).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            near_p = cv2.dilate((parts == p).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            contact = (near_q & (parts == p)) | (near_p & (parts == q))
            valley = float(image[contact].mean()) / min(props[p].intensity_max, props[q].intensity_max)
            if valley >= MERGE_VALLEY and valley > best_valley:
                best, best_valley = (p, q), valley
        if best is None:
            break
        parts[parts == best[1]] = best[0]
    _, renumbered = np.unique(parts, return_inverse=True)
    return renumbered.reshape(parts.shape).astype(np.int32)


def _segment_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Distance of each (row, column) point to the segment start-end."""
    direction = end - start
    length = float(direction @ direction)
    t = np.clip(((points - start) @ direction) / length, 0, 1) if length > 0 else np.zeros(len(points))
    return np.linalg.norm(points - (start + t[:, None] * direction), axis=1)


def skeleton_ends(mask: np.ndarray, width: float) -> np.ndarray:
    """(k, 2) skeleton end points of a mask, farthest from its centre first, at least a width
    apart (a forked tip gives one end)."""
    skeleton = skeletonize(mask)
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    ends = np.argwhere(skeleton & (neighbours == 1)).astype(np.float64)
    centre = np.argwhere(mask).mean(axis=0)
    chosen: list[np.ndarray] = []
    for point in sorted(ends, key=lambda p: -np.linalg.norm(p - centre)):
        if all(np.linalg.norm(point - other) >= width for other in chosen):
            chosen.append(point)
    return np.array(chosen).reshape(-1, 2)


def cross_split(mask: np.ndarray, width: float) -> list[np.ndarray] | None:
    """Two crossing (or T-touching) chromosomes as two straight bars: of the ways to pair the
    mask's 3-4 outermost skeleton ends into two bars, the one whose bars lie closest to its
    pixels; each chromosome is the pixels within half a width (+1 px) of its bar, the nearer
    bar's for the rest, so the crossing belongs to both. None when the shape has under 3 ends."""
    ends = skeleton_ends(mask, width)[:4]
    if len(ends) < 3:
        return None
    points = np.argwhere(mask).astype(np.float64)
    if len(ends) == 4:
        pairings = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
        candidates = [((ends[a], ends[b]), (ends[c], ends[d])) for (a, b), (c, d) in pairings]
    else:
        candidates = []
        for a, b, c in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
            direction = ends[b] - ends[a]
            t = np.clip((ends[c] - ends[a]) @ direction / max(float(direction @ direction), 1e-9), 0, 1)
            candidates.append(((ends[a], ends[b]), (ends[c], ends[a] + t * direction)))
    best, best_cost = None, np.inf
    for bars in candidates:
        distances = np.stack([_segment_distance(points, *bar) for bar in bars], axis=1)
        cost = float(distances.min(axis=1).sum())
        if cost < best_cost:
            best, best_cost = distances, cost
    near = best <= width / 2 + 1
    nearest = best.argmin(axis=1)
    pieces = []
    for index in (0, 1):
        chosen = near[:, index] | (~near.any(axis=1) & (nearest == index))
        piece = np.zeros(mask.shape, bool)
        piece[tuple(points[chosen].astype(int).T)] = True
        pieces.append(piece)
    return pieces if all(piece.any() for piece in pieces) else None


def main_spread(objects: np.ndarray, counts: list[tuple[int, int]], width: float, spread_gap: float) -> set[int]:
    """Object ids of the main spread: objects less than ``spread_gap`` widths apart are one
    group (single linkage, by dilation); the group holding the most chromosomes is kept."""
    if not counts:
        return set()
    radius = max(int(round(spread_gap * width / 2)), 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    numbers = np.array([number for number, _ in counts])
    grown = cv2.dilate(np.isin(objects, numbers).astype(np.uint8), disc)
    groups, _ = ndimage.label(grown, EIGHT_CONNECTED)
    boxes = ndimage.find_objects(objects)
    group_of = {}
    for number, _ in counts:
        inside = objects[boxes[number - 1]] == number
        group_of[number] = int(np.bincount(groups[boxes[number - 1]][inside]).argmax())
    totals: dict[int, int] = {}
    for number, count in counts:
        totals[group_of[number]] = totals.get(group_of[number], 0) + count
    main = max(sorted(totals), key=totals.get)
    return {number for number, _ in counts if group_of[number] == main}


def model_pair(labels: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome A (labels 1 + 3) and B (2 + 3) within the part; part pixels the model called
    background go to the nearer of the two."""
    first = part & ((labels == 1) | (labels == 3))
    second = part & ((labels == 2) | (labels == 3))
    rest = part & ~first & ~second
    if rest.any() and first.any() and second.any():
        to_first = ndimage.distance_transform_edt(~first)
        to_second = ndimage.distance_transform_edt(~second)
        first = first | (rest & (to_first <= to_second))
        second = second | (rest & (to_first > to_second))
    return first, second


def compact(mask: np.ndarray, share: float) -> bool:
    """Whether most of a chromosome mask is one 8-connected piece."""
    pieces, count = ndimage.label(mask, EIGHT_CONNECTED)
    return count > 0 and np.bincount(pieces.ravel())[1:].max() >= share * mask.sum()


def shape_split(part: np.ndarray, count: int, width: float) -> list[np.ndarray]:
    """Best effort for touching chromosomes: a watershed of the distance transform from its
    ``count`` highest peaks at least half a width apart (fewer if the shape has fewer)."""
    distance = ndimage.distance_transform_edt(np.pad(part, 1))[1:-1, 1:-1]
    peaks = peak_local_max(distance, min_distance=max(int(width / 2), 1), num_peaks=count, labels=part.astype(np.int32), exclude_border=False)
    if len(peaks) < 2:
        return [part]
    markers = np.zeros(part.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labelled = watershed(-distance, markers, mask=part)
    return [labelled == number for number in range(1, len(peaks) + 1) if (labelled == number).any()]
