"""amfl.inference: any image file in -> labels, overlay, separated chromosomes, scores."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import amfl.inference as inference
from amfl.inference import (
    InputError,
    Segmenter,
    analyse,
    chromosome_masks,
    difference_image,
    foreground_image,
    labels_from_pixels,
    match_ground_truths,
    output_stems,
    overlay,
    read_ground_truth,
    read_image,
    resolve_model_source,
    result_row,
    save_label_png,
    save_results,
    to_grey,
    write_csv,
)
from amfl.models import create_model
from amfl.preprocessing import prepare_images
from conftest import make_pairs

PAIRS = make_pairs(2)
#: A dataset-like sample: int16 grey (overlap sums above 255) and its labels.
IMAGE, LABELS = PAIRS.images[0], PAIRS.labels[0]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    create_model("amfl-small").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def segmenter(model_dir):
    previous = torch.get_num_threads()
    inference.limit_threads(1)
    yield Segmenter.from_pretrained(model_dir)
    torch.set_num_threads(previous)


def save(array: np.ndarray, path) -> str:
    if str(path).endswith((".tif", ".tiff")):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    return str(path)


def as_uint16(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, None).astype(np.uint16)


def expected_labels(segmenter: Segmenter, image: np.ndarray) -> np.ndarray:
    """The training path by hand: prepare_images, predict, argmax, crop."""
    batch, padding = prepare_images(np.clip(image.astype(np.float32), 0, None)[None])
    probabilities = segmenter.model.predict(torch.from_numpy(batch[:, None]))
    return padding.crop(probabilities.argmax(1)[0]).numpy()


# --- Reading and converting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "convert"),
    [
        ("grey16.png", as_uint16),
        ("grey16.tif", as_uint16),
        ("grey8.png", lambda image: np.clip(image, 0, 255).astype(np.uint8)),
        ("rgb8.jpg", lambda image: np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, -1)),
        ("rgb8.bmp", lambda image: np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, -1)),
        ("rgb16.tif", lambda image: np.repeat(as_uint16(image)[..., None], 3, -1)),
        ("float.tif", lambda image: image.astype(np.float32) / 400),
    ],
)
def test_every_format_segments_at_its_own_size(tmp_path, segmenter, name, convert):
    path = save(convert(IMAGE), tmp_path / name)
    result = segmenter.segment(path)
    assert result.shape == IMAGE.shape
    assert result.labels.dtype == np.uint8 and result.labels.max() <= 3
    assert not result.light_background and result.seconds > 0


def test_segmentation_is_the_training_preprocessing_then_the_model(tmp_path, segmenter):
    path = save(as_uint16(IMAGE), tmp_path / "sample.png")
    np.testing.assert_array_equal(segmenter.segment(path).labels, expected_labels(segmenter, IMAGE))


def test_any_size_is_padded_to_a_multiple_of_16_and_cropped_back(segmenter):
    image = np.zeros((37, 201), np.uint16)
    image[10:30, 50:150] = 300
    result = segmenter.segment(image)
    assert result.shape == (37, 201)
    np.testing.assert_array_equal(result.labels, expected_labels(segmenter, image))


@pytest.mark.slow
def test_the_largest_accepted_image_segments(segmenter):
    """4096 x 4096: about 2 minutes and 12 GB on one CPU thread."""
    image = np.zeros((4096, 4096), np.uint16)
    image[1000:3000, 2000:2100] = 300
    assert segmenter.segment(image).shape == (4096, 4096)


def test_rgba_drops_alpha_and_says_so(tmp_path, segmenter):
    rgba = np.zeros((*IMAGE.shape, 4), np.uint8)
    rgba[..., :3] = np.clip(IMAGE, 0, 255)[..., None]
    rgba[..., 3] = 128
    result = segmenter.segment(save(rgba, tmp_path / "rgba.png"))
    assert result.shape == IMAGE.shape
    assert any("alpha" in note for note in result.notes)


def test_opaque_alpha_is_dropped_silently():
    rgba = np.full((4, 4, 4), 255, np.uint8)
    grey, notes = to_grey(rgba)
    assert grey.shape == (4, 4) and notes == []


def test_light_background_is_detected_and_inverted(tmp_path, segmenter):
    dark = np.clip(IMAGE, 0, 255).astype(np.uint8)
    light = 255 - dark
    foreground, inverted = foreground_image(light.astype(np.float32))
    assert inverted
    np.testing.assert_allclose(foreground, dark)
    result = segmenter.segment(save(light, tmp_path / "light.png"))
    assert result.light_background and any("inverted" in note for note in result.notes)
    np.testing.assert_array_equal(result.labels, expected_labels(segmenter, dark))


def test_dark_background_offset_is_removed():
    image = np.full((20, 20), 100.0, np.float32)
    image[5:15, 5:15] = 400
    foreground, inverted = foreground_image(image)
    assert not inverted
    assert foreground.min() == 0 and foreground.max() == 300


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"chromosomes, but in words", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
    ids=["empty", "text", "png-signature-only"],
)
def test_unreadable_files_raise_input_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"bad.png: .*{message}"):
        read_image(path)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg", "cut.tif"])
def test_truncated_files_raise_input_errors(tmp_path, name):
    whole = tmp_path / f"whole_{name}"
    save(np.random.default_rng(0).integers(0, 255, (300, 300), dtype=np.uint8), whole)
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=name):
        read_image(tmp_path / name)


@pytest.mark.parametrize("name", ["wide.png", "tall.tif"])
def test_images_over_4096_pixels_a_side_are_refused_before_decoding(tmp_path, name):
    shape = (3, 4097) if name.startswith("wide") else (4097, 3)
    path = save(np.zeros(shape, np.uint8), tmp_path / name)
    with pytest.raises(InputError, match="limit is 4096 x 4096"):
        read_image(path)


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    path = save(np.zeros((64, 64), np.uint8), tmp_path / "big.png")
    monkeypatch.setattr(inference, "MAX_FILE_BYTES", 50)
    with pytest.raises(InputError, match="big.png: the file is .* MB; the limit is"):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "absent.png")


@pytest.mark.parametrize("shape", [(8, 8, 5), (2, 8, 8, 3)])
def test_arrays_that_are_not_grey_or_rgb_are_refused(segmenter, shape):
    with pytest.raises(InputError, match="neither grey nor RGB"):
        segmenter.segment(np.zeros(shape, np.uint8))


def test_not_finite_values_are_refused():
    image = np.zeros((4, 4), np.float32)
    image[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        to_grey(image)


# --- Pictures -------------------------------------------------------------------------------


def test_chromosomes_a_and_b_share_the_overlap():
    labels = np.array([[0, 1, 2, 3]], np.uint8)
    first, second = chromosome_masks(labels)
    np.testing.assert_array_equal(first, [[False, True, False, True]])
    np.testing.assert_array_equal(second, [[False, False, True, True]])


def test_areas_and_cutouts(segmenter):
    result = segmenter.segment(as_uint16(IMAGE))
    areas = result.areas()
    assert sum(areas[name] for name in ("background", "chromosome_1_only", "chromosome_2_only", "overlap")) == IMAGE.size
    assert areas["chromosome_a"] == areas["chromosome_1_only"] + areas["overlap"]
    assert areas["chromosome_b"] == areas["chromosome_2_only"] + areas["overlap"]
    cut_a, cut_b = result.cutouts()
    first, second = result.chromosome_masks()
    display = result.display()
    np.testing.assert_array_equal(cut_a[first], display[first])
    assert (cut_a[~first] == 0).all() and (cut_b[~second] == 0).all()


def test_overlay_blends_paper_colours_over_chromosomes_only():
    display = np.full((1, 4), 100, np.uint8)
    labels = np.array([[0, 1, 2, 3]], np.uint8)
    np.testing.assert_array_equal(overlay(display, labels, 1.0)[0], [[100] * 3, RED, GREEN, BLUE])
    np.testing.assert_array_equal(overlay(display, labels, 0.0)[0], [[100] * 3] * 4)
    assert tuple(overlay(display, labels, 0.5)[0, 1]) == (178, 50, 50)
    with pytest.raises(ValueError, match="opacity"):
        overlay(display, labels, 1.5)


def test_difference_image_highlights_wrong_pixels_in_the_predicted_colour():
    truth = np.array([[0, 1, 1, 3, 2]], np.uint8)
    pred = np.array([[0, 1, 0, 2, 2]], np.uint8)
    image = difference_image(pred, truth)[0]
    assert tuple(image[0]) == (0, 0, 0)  # correct background
    assert tuple(image[1]) == tuple(image[4]) == (64, 64, 64)  # correct chromosome
    assert tuple(image[2]) == (255, 255, 255)  # missed: predicted background
    assert tuple(image[3]) == GREEN  # overlap predicted as chromosome 2


# --- Ground truth ---------------------------------------------------------------------------


def test_label_png_is_an_index_map_in_paper_colours(tmp_path):
    path = save_label_png(LABELS, tmp_path / "labels.png")
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), LABELS)
        assert tuple(image.convert("RGB").getpixel((0, 0))) == (0, 0, 0)
    np.testing.assert_array_equal(read_ground_truth(path, LABELS.shape), LABELS)


def test_ground_truth_as_grey_index_map(tmp_path):
    path = save(LABELS, tmp_path / "index.png")
    np.testing.assert_array_equal(read_ground_truth(path, LABELS.shape), LABELS)


def test_ground_truth_in_paper_colours_even_after_jpeg(tmp_path):
    colours = np.array([(0, 0, 0), RED, GREEN, BLUE], np.uint8)[LABELS]
    np.testing.assert_array_equal(read_ground_truth(save(colours, tmp_path / "c.png"), LABELS.shape), LABELS)
    jpeg = read_ground_truth(save(colours, tmp_path / "c.jpg"), LABELS.shape)
    assert (jpeg == LABELS).mean() > 0.97  # only edge pixels may move


def test_palette_with_another_colour_order_is_read_by_colour(tmp_path):
    image = Image.fromarray((3 - LABELS).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0])  # index 3 - label
    image.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_ground_truth(tmp_path / "palette.png", LABELS.shape), LABELS)


def test_ground_truth_of_the_wrong_size_is_refused(tmp_path):
    path = save(LABELS[:50], tmp_path / "small.png")
    with pytest.raises(InputError, match="small.png: the ground truth is 93 x 50 pixels but the image is 93 x 94"):
        read_ground_truth(path, LABELS.shape)


def test_ground_truth_labels_outside_0_3_are_refused(tmp_path):
    path = save((LABELS > 0).astype(np.uint8) * 255, tmp_path / "binary.png")
    with pytest.raises(InputError, match="binary.png: labels must be 0-3 .* found values 255"):
        read_ground_truth(path, LABELS.shape)


def test_ground_truth_with_unknown_colours_is_refused():
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[0, 0] = (255, 255, 0)
    with pytest.raises(InputError, match="1 pixels match none of the class colours"):
        labels_from_pixels(pixels, "yellow.png")


def test_ground_truths_are_matched_to_images_by_name():
    matched, unmatched = match_ground_truths(
        ["/up/a.png", "/up/b.tif", "/up/c.png"], ["/gt/a_label.png", "/gt/B.png", "/gt/z_mask.png"]
    )
    assert {image: truth.name for image, truth in matched.items()} == {
        "/up/a.png": "a_label.png",
        "/up/b.tif": "B.png",
    }
    assert [truth.name for truth in unmatched] == ["z_mask.png"]
    matched, _ = match_ground_truths(["/d/x.png", "/d/y.png"], ["/d/x.png", "/d/x_label.png", "/d/y.png"])
    assert matched == {"/d/x.png": Path("/d/x_label.png")}  # suffixed wins; never itself
    matched, unmatched = match_ground_truths(["/up/x.png"], ["/gt/anything.png"])
    assert matched["/up/x.png"].name == "anything.png" and not unmatched


def test_analysis_scores_against_a_ground_truth_and_keeps_a_bad_one_as_a_note(tmp_path, segmenter):
    image = save(as_uint16(IMAGE), tmp_path / "x.png")
    truth = save_label_png(LABELS, tmp_path / "x_label.png")
    analysis = analyse(segmenter, image, truth)
    assert set(analysis.scores) == {"acc", "dice", "iou", "recall", "precision", "fnr", "fpr", "hausdorff"}
    assert analysis.difference().shape == (*IMAGE.shape, 3)
    bad = analyse(segmenter, image, save(LABELS[:10], tmp_path / "short.png"))
    assert bad.scores is None and "short.png" in bad.truth_problem
    assert bad.segmentation.shape == IMAGE.shape


# --- Outputs --------------------------------------------------------------------------------


def test_output_stems_stay_distinct():
    assert output_stems(["a.png", "b.png"]) == ["a", "b"]
    assert output_stems(["a.png", "a.tif", "a.png"]) == ["a_png", "a_tif", "a_png_2"]


def test_results_files_and_csv(tmp_path, segmenter):
    image = save(as_uint16(IMAGE), tmp_path / "x.png")
    scored = analyse(segmenter, image, save_label_png(LABELS, tmp_path / "x_label.png"))
    plain = analyse(segmenter, image, name="plain.png")
    out = tmp_path / "out"
    out.mkdir()
    paths = save_results(scored, out, "x", opacity=0.3)
    assert [path.name for path in paths] == ["x_labels.png", "x_overlay.png", "x_difference.png"]
    assert len(save_results(plain, out, "plain")) == 2
    write_csv([scored.row(), plain.row()], out / "results.csv")
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["file"] == "x.png" and float(rows[0]["dice_percent"]) >= 0
    assert rows[1]["file"] == "plain.png" and rows[1]["dice_percent"] == ""
    assert int(rows[0]["area_background_px"]) + int(rows[0]["area_chromosome_a_px"]) >= 1
    assert result_row("y", plain.segmentation)["width_px"] == 93


# --- Model source ---------------------------------------------------------------------------


def test_missing_default_model_names_the_folder_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    monkeypatch.setattr(inference, "DEFAULT_MODEL_DIR", tmp_path / "space" / "model")
    with pytest.raises(FileNotFoundError, match=r"space/model does not exist and AMFL_MODEL is not set"):
        resolve_model_source()


def test_model_source_order(tmp_path, monkeypatch, model_dir):
    monkeypatch.setattr(inference, "DEFAULT_MODEL_DIR", model_dir)
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    assert resolve_model_source() == str(model_dir)
    monkeypatch.setenv("AMFL_MODEL", "someone/amfl")
    assert resolve_model_source() == "someone/amfl"
    assert resolve_model_source(tmp_path) == str(tmp_path)


def test_thread_count_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        inference.limit_threads(0)
