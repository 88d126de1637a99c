"""amfl.segmentation with the bundled trained model on real crops of the test split: the
segmenter is the model's preprocessing, the network and the crop back, nothing else, at any
size and from any file format; the trained model segments the examples well; analyses score
against a ground truth; the model source and thread settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import amfl.hub
from amfl.metrics import METRIC_NAMES, score_batch
from amfl.pictures import difference_image, overlay, stretch_to_uint8
from amfl.preprocessing import PREPROCESSOR_FILE
from amfl.reading import InputError
from amfl.segmentation import (
    MODEL_ENV,
    Segmentation,
    Segmenter,
    analyse,
    chromosome_masks,
    limit_threads,
    resolve_model_source,
)
from conftest import BUNDLED_MODEL, EXAMPLE_COUNT, example_arrays, example_paths

#: The paper's network input side: samples are padded centred to at least this.
TRAINING_SIZE = 128
NUMBERS = range(1, EXAMPLE_COUNT + 1)
#: Measured mean Dice of the bundled model over the 8 examples: 96.82 (per image 94.6-99.1).
MIN_MEAN_DICE = 95.0


def hand_prepared(grey: np.ndarray, pad_value: float) -> tuple[np.ndarray, tuple[int, int], bool]:
    """The bundled model's preprocessing written out: background = median of the outermost
    pixels, subtracted (or the image inverted about it when it is nearer the image's maximum
    than its minimum), negatives clipped, padded centred (extra row/column at the bottom/
    right) with ``pad_value`` to at least 128 and a multiple of 16, divided by the maximum.
    Returns the network input, the (top, left) offset of the image in it, and the inversion."""
    grey = grey.astype(np.float32)
    level = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
    light = bool(level > (grey.min() + grey.max()) / 2)
    foreground = np.clip(level - grey if light else grey - level, 0, None)
    height, width = grey.shape
    target = [max(TRAINING_SIZE, -(-side // 16) * 16) for side in (height, width)]
    top, left = (target[0] - height) // 2, (target[1] - width) // 2
    canvas = np.full(target, pad_value, np.float32)
    canvas[top : top + height, left : left + width] = foreground
    peak = canvas.max()
    return (canvas / peak if peak > 0 else canvas), (top, left), light


def by_hand(segmenter: Segmenter, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(network input, labels): the hand preprocessing, the model, argmax, the crop back, then
    the saved steps on the way out (their own tests: test_pair_parts, test_piece_names,
    test_small_overlaps, test_naming)."""
    settings = json.loads((BUNDLED_MODEL / PREPROCESSOR_FILE).read_text())
    assert (settings["background"], settings["polarity"], settings["scaling"]) == (
        "border_median", "auto", "per_image_max",
    ), "hand_prepared implements these steps only"
    network_input, (top, left), _ = hand_prepared(grey, settings["pad_value"])
    probabilities = segmenter.model.predict(torch.from_numpy(network_input)[None, None])
    labels = probabilities.argmax(dim=1)[0].numpy()
    height, width = grey.shape
    crop = (slice(top, top + height), slice(left, left + width))
    finished = segmenter.preprocessor.finish(labels[crop].astype(np.uint8), network_input[crop])
    return network_input, finished


def record_network_inputs(segmenter: Segmenter, monkeypatch) -> list[np.ndarray]:
    """What ``segmenter`` hands its network, recorded until the test ends."""
    seen = []
    predict = segmenter.predict

    def recording(batch):
        seen.append(batch.numpy().copy())
        return predict(batch)

    monkeypatch.setattr(segmenter, "predict", recording)
    return seen


@pytest.fixture
def network_inputs(bundled_segmenter, monkeypatch):
    return record_network_inputs(bundled_segmenter, monkeypatch)


def assert_segmented_by_hand(segmenter, grey, result, seen):
    """``result`` of ``segmenter.segment(grey)``, the last input recorded in ``seen``, are
    what the hand path gives (taken before :func:`by_hand` runs the network itself)."""
    given = seen[-1]
    network_input, labels = by_hand(segmenter, grey)
    assert given.shape == (1, 1, *network_input.shape)
    np.testing.assert_array_equal(given[0, 0], network_input)
    np.testing.assert_array_equal(result.labels, labels)


# --- The segmenter is the preprocessing, the model and the crop -----------------------------


@pytest.mark.parametrize("number", NUMBERS)
def test_segmentation_is_the_models_preprocessing_then_the_network(bundled_segmenter, network_inputs, number):
    image_path, _ = example_paths(number)
    result = bundled_segmenter.segment(image_path)
    grey, _ = example_arrays(number)
    assert result.shape == (94, 93) and result.labels.dtype == np.uint8
    assert not result.light_background and result.notes == ()
    np.testing.assert_array_equal(result.grey, grey)
    assert_segmented_by_hand(bundled_segmenter, grey, result, network_inputs)
    assert set(np.unique(result.labels)) == {0, 1, 2, 3}, "a trained model finds all four classes"


def test_a_model_without_a_saved_preprocessor_is_prepared_the_same_way(bundled_segmenter, monkeypatch):
    """Segmenter(model) takes Preprocessor.for_model's defaults, which prepare images as the
    bundled model's saved file says (it differs only in its output steps) and as the hand
    preprocessing does."""
    plain = Segmenter(amfl.hub.from_pretrained(BUNDLED_MODEL))
    saved = bundled_segmenter.preprocessor
    assert plain.preprocessor != saved
    assert plain.preprocessor == saved.without_output_steps(naming="network")
    seen = record_network_inputs(plain, monkeypatch)
    grey, _ = example_arrays(4)
    assert_segmented_by_hand(plain, grey, plain.segment(grey), seen)


@pytest.mark.parametrize(
    ("shape", "offset", "network_shape"),
    [((150, 201), (30, 60), (160, 208)), ((94, 300), (0, 100), (128, 304)), ((130, 93), (20, 0), (144, 128))],
)
def test_any_size_is_padded_to_a_multiple_of_16_and_cropped_back(
    bundled_segmenter, network_inputs, shape, offset, network_shape
):
    crop, _ = example_arrays(2)
    grey = np.zeros(shape, np.uint16)
    grey[offset[0] : offset[0] + 94, offset[1] : offset[1] + 93] = crop
    result = bundled_segmenter.segment(grey)
    assert result.shape == shape and network_inputs[-1].shape == (1, 1, *network_shape)
    assert_segmented_by_hand(bundled_segmenter, grey, result, network_inputs)
    alone = bundled_segmenter.segment(crop).labels
    inside = result.labels[offset[0] : offset[0] + 94, offset[1] : offset[1] + 93]
    assert (inside == alone).mean() > 0.99  # measured 0.9985: more background, same chromosomes


def test_a_small_crop_is_padded_to_the_training_size(bundled_segmenter, network_inputs):
    grey = example_arrays(5)[0][20:57, 10:60]
    result = bundled_segmenter.segment(grey)
    assert result.shape == (37, 50) and network_inputs[-1].shape == (1, 1, 128, 128)
    assert_segmented_by_hand(bundled_segmenter, grey, result, network_inputs)


def save(array: np.ndarray, path: Path, **options) -> Path:
    if path.suffix == ".tif":
        tifffile.imwrite(path, array, **options)
    else:
        Image.fromarray(array).save(path, **options)
    return path


FORMATS = {
    "grey16.png": lambda image: image,
    "grey16.tif": lambda image: image,
    "grey8.png": lambda image: image.astype(np.uint8),
    "rgb8.bmp": lambda image: np.repeat(image.astype(np.uint8)[..., None], 3, -1),
    "rgb16.tif": lambda image: np.repeat(image[..., None], 3, -1),
    "float.tif": lambda image: image.astype(np.float32) / 256,
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_lossless_format_gives_the_same_labels(tmp_path, bundled_segmenter, name):
    grey, _ = example_arrays(1)  # at most 186: fits 8 bits unchanged
    reference = bundled_segmenter.segment(example_paths(1)[0]).labels
    result = bundled_segmenter.segment(save(FORMATS[name](grey), tmp_path / name))
    assert result.shape == (94, 93) and result.seconds > 0
    np.testing.assert_array_equal(result.labels, reference)


def test_jpeg_gives_nearly_the_same_labels(tmp_path, bundled_segmenter):
    grey, _ = example_arrays(1)
    reference = bundled_segmenter.segment(grey).labels
    result = bundled_segmenter.segment(save(grey.astype(np.uint8), tmp_path / "x.jpg", quality=95))
    assert (result.labels == reference).mean() > 0.99  # measured 0.9984


def test_light_background_is_inverted_and_gives_the_dark_images_labels(tmp_path, bundled_segmenter, network_inputs):
    dark, _ = example_arrays(1)
    light = (255 - dark).astype(np.uint8)
    result = bundled_segmenter.segment(save(light, tmp_path / "light.png"))
    assert result.light_background
    assert result.notes == ("light background detected: inverted so chromosomes are bright",)
    np.testing.assert_array_equal(result.labels, bundled_segmenter.segment(dark).labels)
    assert_segmented_by_hand(bundled_segmenter, light, result, network_inputs)
    np.testing.assert_array_equal(result.grey, light)  # kept as read


def test_translucent_rgba_drops_alpha_says_so_and_gives_the_grey_labels(tmp_path, bundled_segmenter):
    grey, _ = example_arrays(3)
    rgba = np.zeros((94, 93, 4), np.uint16)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 30000
    result = bundled_segmenter.segment(rgba)
    assert result.notes == ("transparency (alpha channel) ignored",)
    np.testing.assert_array_equal(result.labels, bundled_segmenter.segment(grey).labels)


@pytest.mark.parametrize("shape", [(8, 8, 5), (2, 8, 8, 3)])
def test_arrays_that_are_not_grey_or_rgb_are_refused(bundled_segmenter, shape):
    with pytest.raises(InputError, match="neither grey nor RGB"):
        bundled_segmenter.segment(np.zeros(shape, np.uint8))


@pytest.mark.slow
def test_the_largest_accepted_image_segments(bundled_segmenter):
    """4096 x 4096, in tiles: 43 s and 0.53 GB above the loaded model on one CPU thread
    (``benchmarks/bench_memory.py``, a training run sharing the 2-core CPU); one forward of
    the whole image took 9.5 GB."""
    image = np.zeros((4096, 4096), np.uint16)
    image[1000:3000, 2000:2100] = 300
    assert bundled_segmenter.segment(image).shape == (4096, 4096)


# --- The trained model ------------------------------------------------------------------------


def test_the_trained_model_segments_the_examples_well(bundled_segmenter):
    dice = [
        analyse(bundled_segmenter, *example_paths(number)).scores["dice"] for number in NUMBERS
    ]
    assert np.mean(dice) > MIN_MEAN_DICE, dice
    assert min(dice) > 88, dice  # measured 94.60 (example 6)


# --- What follows from a label map ------------------------------------------------------------


def test_chromosomes_a_and_b_share_the_overlap():
    first, second = chromosome_masks(np.array([[0, 1, 2, 3]], np.uint8))
    np.testing.assert_array_equal(first, [[False, True, False, True]])
    np.testing.assert_array_equal(second, [[False, False, True, True]])


def segmentation(light: bool = False) -> Segmentation:
    grey = np.array([[10, 20, 30, 40], [50, 60, 70, 90]], np.float32)
    labels = np.array([[0, 1, 2, 3], [1, 1, 3, 0]], np.uint8)
    return Segmentation(grey, labels, light, 0.01)


def test_areas_count_each_class_and_each_whole_chromosome():
    assert segmentation().areas() == {
        "background": 2, "chromosome_1_only": 3, "chromosome_2_only": 1, "overlap": 2,
        "chromosome_a": 5, "chromosome_b": 3,
    }


def test_display_overlay_and_cutouts():
    result = segmentation()
    display = stretch_to_uint8(result.grey)
    np.testing.assert_array_equal(result.display(), display)
    np.testing.assert_array_equal(result.overlay(0.3), overlay(display, result.labels, 0.3))
    cut_a, cut_b = result.cutouts()
    np.testing.assert_array_equal(
        cut_a, [[0, display[0, 1], 0, display[0, 3]], [display[1, 0], display[1, 1], display[1, 2], 0]]
    )
    np.testing.assert_array_equal(cut_b, [[0, 0, display[0, 2], display[0, 3]], [0, 0, display[1, 2], 0]])
    light_a, _ = segmentation(light=True).cutouts()
    np.testing.assert_array_equal(light_a[0], [255, display[0, 1], 255, display[0, 3]])


def test_analysis_scores_against_the_ground_truth(bundled_segmenter):
    image, truth = example_paths(6)
    analysis = analyse(bundled_segmenter, image, truth)
    labels, expected_truth = bundled_segmenter.segment(image).labels, example_arrays(6)[1]
    assert analysis.name == "example_6.png" and analysis.truth_problem is None
    np.testing.assert_array_equal(analysis.truth, expected_truth)
    assert list(analysis.scores) == list(METRIC_NAMES)
    assert analysis.scores == score_batch(labels, expected_truth).means
    np.testing.assert_array_equal(analysis.difference(), difference_image(labels, expected_truth))


def test_a_bad_ground_truth_is_kept_as_a_note_and_the_image_still_segmented(tmp_path, bundled_segmenter):
    image, _ = example_paths(1)
    Image.fromarray(example_arrays(1)[1][:10]).save(tmp_path / "short.png")
    bad = analyse(bundled_segmenter, image, tmp_path / "short.png", name="renamed.png")
    assert bad.name == "renamed.png" and bad.scores is None and bad.truth is None
    assert bad.truth_problem.startswith("ground truth short.png: the ground truth is 93 x 10 pixels")
    assert bad.segmentation.shape == (94, 93) and bad.difference() is None


def test_without_ground_truth_there_are_no_scores(bundled_segmenter):
    plain = analyse(bundled_segmenter, example_paths(2)[0])
    assert (plain.truth, plain.scores, plain.truth_problem, plain.difference()) == (None, None, None, None)


def test_an_unreadable_image_is_an_input_error(tmp_path, bundled_segmenter):
    (tmp_path / "notes.png").write_text("words")
    with pytest.raises(InputError, match="notes.png: not an image"):
        analyse(bundled_segmenter, tmp_path / "notes.png")


# --- Model source and threads -----------------------------------------------------------------


def test_model_source_order(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert resolve_model_source(None, BUNDLED_MODEL) == str(BUNDLED_MODEL)
    monkeypatch.setenv(MODEL_ENV, "someone/amfl")
    assert resolve_model_source(None, BUNDLED_MODEL) == "someone/amfl"
    assert resolve_model_source(tmp_path, BUNDLED_MODEL) == str(tmp_path)
    assert resolve_model_source("", BUNDLED_MODEL) == "someone/amfl"


def test_a_missing_default_model_names_the_folder_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"space/model does not exist and AMFL_MODEL is not set"):
        resolve_model_source(None, tmp_path / "space" / "model")


def test_without_any_model_the_error_names_the_option_and_the_variable(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"--model.*AMFL_MODEL"):
        resolve_model_source(None)


def test_threads_come_from_the_argument_the_variable_or_default_to_one(monkeypatch, restore_threads):
    monkeypatch.delenv("AMFL_THREADS", raising=False)
    assert limit_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("AMFL_THREADS", "2")
    assert limit_threads() == 2 and torch.get_num_threads() == 2
    assert limit_threads(1) == 1 and torch.get_num_threads() == 1


def test_bad_thread_counts_are_refused(monkeypatch, restore_threads):
    with pytest.raises(ValueError, match="at least 1, got 0"):
        limit_threads(0)
    monkeypatch.setenv("AMFL_THREADS", "two")
    with pytest.raises(ValueError, match="AMFL_THREADS must be a whole number of threads, got 'two'"):
        limit_threads()
