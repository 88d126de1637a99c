"""Real pairs as the network sees the synthetic ones: WINDOW_SIZE x WINDOW_SIZE windows of
their metaphases' DAPI, with the pair's labels.

A window is centred on the box of the pair's labelled pixels and shifted inside the image
where the pair lies near a border; a pair larger than the window keeps its centre. Only the
pair is labelled (classes 0-3 of :func:`amfl.data.real_pairs.pair_labels`): every other
chromosome in the window is background (0), as the neighbours of the real benchmark and of
the synthetic pairs with neighbours (:mod:`amfl.data.synthetic`) are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from amfl.data.adir import Metaphase
from amfl.data.pairs import OverlapPairs
from amfl.data.real_pairs import RealPair
from amfl.data.singles import PATCH_SIZE

#: Side of a window, pixels: the synthetic canvas and the network's input side.
WINDOW_SIZE = PATCH_SIZE


def _pair_extent(pair: RealPair) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) of the pair's labelled pixels in its metaphase, pixels,
    bottom and right exclusive (the crop box holds CROP_MARGIN of context beyond them)."""
    top, left = pair.cluster.box[:2]
    rows, columns = np.nonzero(pair.labels)
    return (top + int(rows.min()), top + int(rows.max()) + 1), (left + int(columns.min()), left + int(columns.max()) + 1)


def window_box(pair: RealPair, shape: tuple[int, int], size: int = WINDOW_SIZE) -> tuple[slice, slice]:
    """Rows and columns of the ``size`` x ``size`` window, in a metaphase of ``shape``,
    centred on the pair's labelled pixels and shifted to lie inside the image."""
    if shape[0] < size or shape[1] < size:
        raise ValueError(f"{pair.cluster.metaphase}: image {shape} is smaller than the {size} px window")
    corners = [
        min(max((start + stop - size) // 2, 0), extent - size)
        for (start, stop), extent in zip(_pair_extent(pair), shape, strict=True)
    ]
    return slice(corners[0], corners[0] + size), slice(corners[1], corners[1] + size)


def window_labels(pair: RealPair, window: tuple[slice, slice]) -> np.ndarray:
    """The pair's labels (uint8 0-3) on ``window`` (metaphase coordinates), 0 elsewhere;
    the part of a larger pair outside the window is cut off."""
    top, left, bottom, right = pair.cluster.box
    labels = np.zeros((window[0].stop - window[0].start, window[1].stop - window[1].start), np.uint8)
    inside, crop = [], []
    for (start, stop), part in zip(((top, bottom), (left, right)), window, strict=True):
        low, high = max(start, part.start), min(stop, part.stop)
        if low >= high:
            return labels
        inside.append(slice(low - part.start, high - part.start))
        crop.append(slice(low - start, high - start))
    labels[tuple(inside)] = pair.labels[tuple(crop)]
    return labels


def cut_window(pair: RealPair, dapi: np.ndarray, size: int = WINDOW_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(DAPI window, pair labels), both (size, size) uint8, of a pair of the metaphase
    whose DAPI plane is ``dapi``."""
    window = window_box(pair, dapi.shape, size)
    return dapi[window].astype(np.uint8), window_labels(pair, window)


def real_windows(pairs: Sequence[RealPair], metaphases: Iterable[Metaphase], size: int = WINDOW_SIZE) -> OverlapPairs:
    """The windows of ``pairs`` as uint8 :class:`OverlapPairs`, in the pairs' order; each
    pair's DAPI comes from the metaphase of its name among ``metaphases``."""
    needed = {pair.cluster.metaphase for pair in pairs}
    dapi = {metaphase.name: metaphase.read()[0] for metaphase in metaphases if metaphase.name in needed}
    missing = needed - dapi.keys()
    if missing:
        raise ValueError(f"no metaphase given for the pairs of {sorted(missing)}")
    images = np.empty((len(pairs), size, size), np.uint8)
    labels = np.empty_like(images)
    for index, pair in enumerate(pairs):
        images[index], labels[index] = cut_window(pair, dapi[pair.cluster.metaphase], size)
    return OverlapPairs(images, labels)
