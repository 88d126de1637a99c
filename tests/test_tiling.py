"""amfl.tiling: large images run through the network in overlapping tiles, with bounded
memory and the whole image's labels; images up to the threshold keep their single forward."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import amfl.hub
from amfl.metrics import score_batch
from amfl.models import create_model
from amfl.models.precision import PRECISIONS
from amfl.segmentation import LARGE_IMAGE_PIXELS, Segmenter, inference_ready
from amfl.tiling import Tiling, core_spans, tiles
from conftest import BUNDLED_MODEL, example_arrays

#: Fewest pixels, in percent, on which tiled and whole-image labels must agree. Measured on
#: the 700 x 900 mosaic below with the bundled model of stop 41 and the default tiling
#: (512-pixel cores, 64-pixel margins): 8 pixels differ in float32 (99.999 %; 0 with 96-pixel
#: margins). The default of stops 39-40: 97 (99.985 %), all within 17 px of a seam, where the
#: network's context reaches past 64 pixels (0 with 96- or 128-pixel margins, 763 with 32);
#: that of stops 35-38: 17-39. Without sampling the
#: upsampling layers on the whole image's grid, 3453 pixels differed (99.45 %).
MIN_AGREEMENT_PERCENT = 99.97
#: Most chromosome pixels, in percent of them, whose class may differ (measured 0.016 %; the
#: default of stops 39-40: 0.19 %).
MAX_CHROMOSOME_CHANGE_PERCENT = 0.3
#: Most Dice points between the two against the mosaic's truth (measured 91.68 and 91.69;
#: the default of stops 39-40: 91.10 and 90.97).
MAX_DICE_CHANGE = 0.25


def example_mosaic(shape: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(grey, ground truth): the committed 94 x 93 examples side by side, in random order."""
    rng = np.random.default_rng(seed)
    grey, truth = np.zeros(shape, np.uint16), np.zeros(shape, np.uint8)
    for top in range(0, shape[0] - 94 + 1, 94):
        for left in range(0, shape[1] - 93 + 1, 93):
            image, labels = example_arrays(int(rng.integers(1, 9)))
            grey[top : top + 94, left : left + 93] = image
            truth[top : top + 94, left : left + 93] = labels
    return grey, truth


def forward_shapes(segmenter: Segmenter) -> list[tuple[int, ...]]:
    """The shape of every network input of ``segmenter`` from now on: tiles go through the
    model, whole images through ``Segmenter.predict`` (the model's trace)."""
    shapes: list[tuple[int, ...]] = []
    segmenter.model.register_forward_pre_hook(lambda _, inputs: shapes.append(tuple(inputs[0].shape)))
    predict = segmenter.predict
    segmenter.predict = lambda batch: shapes.append(tuple(batch.shape)) or predict(batch)
    return shapes


@pytest.fixture(scope="module")
def bundled():
    """(model, preprocessor) of the bundled model, loaded once."""
    model = amfl.hub.from_pretrained(BUNDLED_MODEL)
    return model, amfl.hub.load_preprocessor(BUNDLED_MODEL, model)


@pytest.mark.parametrize(("length", "expected"), [
    (128, [(0, 128)]), (512, [(0, 512)]), (528, [(0, 256), (256, 528)]),
    (1040, [(0, 336), (336, 688), (688, 1040)]),
])
def test_cores_cover_the_axis_evenly_in_multiples_of_the_divisor(length, expected):
    assert core_spans(length, 512, 16) == expected


def test_windows_add_the_margin_inside_the_image_and_their_cores_tile_it():
    found = tiles((1040, 528), Tiling(core=512, margin=64), 16)
    covered = np.zeros((1040, 528), int)
    for rows, columns, core_rows, core_columns in found:
        assert (rows.stop - rows.start) % 16 == 0 and (columns.stop - columns.start) % 16 == 0
        assert rows.start >= 0 and rows.stop <= 1040 and columns.stop <= 528
        covered[rows, columns][core_rows, core_columns] += 1
    assert (covered == 1).all() and len(found) == 6
    rows, columns, core_rows, core_columns = found[3]  # the middle row of cores, right column
    assert (rows, columns) == (slice(272, 752), slice(192, 528)) and core_rows == slice(64, 416)


def test_a_large_image_never_reaches_the_network_in_more_than_one_tile():
    """Peak memory is that of one window whatever the image size: the tiny model of
    amfl-small's shape shows the windows the segmenter hands its network."""
    segmenter = Segmenter(create_model("amfl-small", base_width=4))
    shapes = forward_shapes(segmenter)
    grey = np.random.default_rng(0).random((1100, 1000)).astype(np.float32)
    assert segmenter.is_large(grey.shape)
    assert segmenter.segment_grey(grey).shape == (1100, 1000)
    largest = segmenter.tiling.largest_tile(16)
    assert largest == 640 and len(shapes) == 6
    assert all(shape[:2] == (1, 1) and max(shape[2:]) <= largest for shape in shapes), shapes


@pytest.mark.parametrize("precision", PRECISIONS)
def test_tiled_labels_are_the_whole_image_labels(bundled, precision):
    """Normalisation of the whole image, the network in tiles: the labels agree with one
    forward of the whole image (tiling forced on a 700 x 900 mosaic, otherwise one forward),
    in either precision (stop 41's default: bfloat16 16 pixels differ, float32 8). The steps
    for a pair crop alone (parts dropped, pieces renamed) are off in both: a tiled image is a
    whole field, which skips them by design (test_pair_parts, test_piece_names)."""
    model, saved = bundled
    preprocessor = saved.without_crop_steps()
    grey, truth = example_mosaic((700, 900))
    whole = Segmenter(model, preprocessor=preprocessor, tiling=Tiling(above_pixels=10**9), precision=precision)
    tiled = Segmenter(model, preprocessor=preprocessor, tiling=Tiling(above_pixels=0), precision=precision)
    shapes = forward_shapes(tiled)
    expected, found = whole.segment_grey(grey).labels, tiled.segment_grey(grey).labels
    assert len(shapes) == 4
    differ = found != expected
    assert 100 * (1 - differ.mean()) >= MIN_AGREEMENT_PERCENT, int(differ.sum())
    chromosome = (expected > 0) | (found > 0)
    assert 100 * (differ & chromosome).sum() / chromosome.sum() <= MAX_CHROMOSOME_CHANGE_PERCENT
    dice = [score_batch(labels, truth).means["dice"] for labels in (expected, found)]
    assert abs(dice[0] - dice[1]) < MAX_DICE_CHANGE, dice


def test_two_bfloat16_tiled_forwards_at_once_give_the_labels_of_one_at_a_time(bundled):
    """The app tiles large images in threads beside other requests. In bfloat16, torch's
    grid_sample crashed the process (SIGSEGV) with two tiled forwards at once, before the
    tiles' upsampling sampled in float32."""
    model, preprocessor = bundled
    segmenter = Segmenter(model, preprocessor=preprocessor, tiling=Tiling(above_pixels=0), precision="bfloat16")
    images = [example_mosaic((600, 700), seed=seed)[0] for seed in (2, 3)]
    alone = [segmenter.segment_grey(grey).labels for grey in images]
    together = {}
    threads = [threading.Thread(target=lambda i=i: together.update({i: segmenter.segment_grey(images[i]).labels}))
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, labels in enumerate(alone):
        np.testing.assert_array_equal(together[index], labels)


def test_an_image_at_the_threshold_keeps_todays_single_forward_bit_for_bit(bundled):
    """1024 x 1024 is one forward with the labels of the code before tiling (the model as
    ``inference_ready`` makes it, argmax of the probabilities, then the model's output steps);
    one row more is tiled."""
    model, preprocessor = bundled
    segmenter = Segmenter(model, preprocessor=preprocessor)
    shapes = forward_shapes(segmenter)
    grey, _ = example_mosaic((1024, 1024), seed=1)
    assert 1024 * 1024 == LARGE_IMAGE_PIXELS and not segmenter.is_large(grey.shape)
    labels = segmenter.segment_grey(grey).labels
    assert shapes == [(1, 1, 1024, 1024)]
    prepared = preprocessor.prepare(grey[None])
    today = inference_ready(model).predict(torch.from_numpy(prepared.images[:, None]))
    network_labels = prepared.padding.crop(today.argmax(dim=1)[0]).to(torch.uint8).numpy()
    np.testing.assert_array_equal(labels, preprocessor.finish(network_labels, prepared.unpadded()[0]))
    assert segmenter.is_large((1025, 1024)) and not segmenter.is_large((1024, 1000))


@pytest.mark.parametrize("settings", [{"core": 0}, {"margin": -1}, {"above_pixels": 1.5}, {"core": True}])
def test_bad_tiling_settings_are_refused(settings):
    with pytest.raises(ValueError, match="tiling"):
        Tiling(**settings)
