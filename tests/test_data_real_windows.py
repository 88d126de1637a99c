"""amfl.data.real_windows: real pairs cut as 128 x 128 windows of their metaphase, with the
pair's labels at the right offset, shifted inside the image at its borders.

Made-up pairs on a made-up metaphase check the geometry; the real training pairs (when the
ADIR set is present) check it against the crops of ``amfl.data.real_pairs``."""

from __future__ import annotations

import numpy as np
import pytest

from amfl.data.adir import list_metaphases
from amfl.data.real_pairs import CROP_MARGIN, Cluster, RealPair, extract_real_pairs
from amfl.data.real_windows import WINDOW_SIZE, cut_window, real_windows

from conftest import skip_without_adir

#: The made-up metaphase, pixels (rows, columns).
SHAPE = (300, 400)


def _metaphase() -> np.ndarray:
    """A DAPI plane in which a shifted window differs: (7 x row + column) % 256."""
    rows, columns = np.indices(SHAPE)
    return ((rows * 7 + columns) % 256).astype(np.uint8)


def _pair(top: int, left: int, height: int, width: int) -> RealPair:
    """A made-up overlapping pair whose labelled pixels fill rows top..top+height-1 and
    columns left..left+width-1 (1 top half, 2 bottom half, 3 a centre block), with the crop
    box of ``real_pairs`` (CROP_MARGIN around it, cut by the image)."""
    box = (max(top - CROP_MARGIN, 0), max(left - CROP_MARGIN, 0),
           min(top + height + CROP_MARGIN, SHAPE[0]), min(left + width + CROP_MARGIN, SHAPE[1]))
    labels = np.zeros((box[2] - box[0], box[3] - box[1]), np.uint8)
    rows, columns = top - box[0], left - box[1]
    labels[rows : rows + height // 2, columns : columns + width] = 1
    labels[rows + height // 2 : rows + height, columns : columns + width] = 2
    labels[rows + height // 3 : rows + 2 * height // 3, columns + width // 3 : columns + 2 * width // 3] = 3
    cluster = Cluster("M1", "A01__XY", "overlapping", box, (1, 2), int((labels == 3).sum()))
    crop = _metaphase()[box[0] : box[2], box[1] : box[3]]
    return RealPair(cluster, crop, np.where(labels > 0, crop, 0).astype(np.uint8), labels)


def _placed(pair: RealPair) -> np.ndarray:
    """The pair's labels on the whole made-up metaphase."""
    top, left, bottom, right = pair.cluster.box
    full = np.zeros(SHAPE, np.uint8)
    full[top:bottom, left:right] = pair.labels
    return full


def test_a_window_is_centred_on_the_pair_with_its_labels_at_the_offset():
    pair = _pair(100, 150, 40, 30)
    image, labels = cut_window(pair, _metaphase())
    assert image.shape == labels.shape == (WINDOW_SIZE, WINDOW_SIZE)
    assert image.dtype == labels.dtype == np.uint8
    top, left = (100 + 140 - WINDOW_SIZE) // 2, (150 + 180 - WINDOW_SIZE) // 2
    window = slice(top, top + WINDOW_SIZE), slice(left, left + WINDOW_SIZE)
    assert np.array_equal(image, _metaphase()[window])
    assert np.array_equal(labels, _placed(pair)[window])
    assert (labels > 0).sum() == (pair.labels > 0).sum()


@pytest.mark.parametrize(("top", "left"), [(2, 3), (SHAPE[0] - 32, SHAPE[1] - 25), (3, SHAPE[1] - 25)])
def test_the_window_is_shifted_inside_the_image_at_its_borders(top, left):
    pair = _pair(top, left, 30, 22)
    image, labels = cut_window(pair, _metaphase())
    corner = (0 if top < WINDOW_SIZE else SHAPE[0] - WINDOW_SIZE, 0 if left < WINDOW_SIZE else SHAPE[1] - WINDOW_SIZE)
    window = slice(corner[0], corner[0] + WINDOW_SIZE), slice(corner[1], corner[1] + WINDOW_SIZE)
    assert np.array_equal(image, _metaphase()[window])
    assert np.array_equal(labels, _placed(pair)[window])
    assert (labels > 0).sum() == (pair.labels > 0).sum()


def test_a_pair_larger_than_the_window_keeps_its_centre():
    pair = _pair(20, 40, 200, 150)
    _, labels = cut_window(pair, _metaphase())
    top, left = 20 + (200 - WINDOW_SIZE) // 2, 40 + (150 - WINDOW_SIZE) // 2
    assert np.array_equal(labels, _placed(pair)[top : top + WINDOW_SIZE, left : left + WINDOW_SIZE])
    assert labels.all()


def test_real_pairs_keep_their_crop_in_the_window():
    """Every real training pair that fits: its raw crop's labelled pixels, at the window's
    labelled pixels, in the same order and grey."""
    skip_without_adir()
    metaphases = list_metaphases()
    pairs = [pair for pair in extract_real_pairs(metaphases, progress=False).select(split="train")
             if max(pair.labels.shape) <= WINDOW_SIZE]
    windows = real_windows(pairs, metaphases)
    assert len(windows) == len(pairs) and windows.images.dtype == windows.labels.dtype == np.uint8
    for pair, image, labels in zip(pairs, windows.images, windows.labels, strict=True):
        assert np.array_equal(labels[labels > 0], pair.labels[pair.labels > 0])
        assert np.array_equal(image[labels > 0], pair.raw[pair.labels > 0])
