"""amfl.reading: image and ground-truth files -> grey images and label maps, and every bad
file -> an InputError naming it."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

import amfl.reading as reading
from amfl.reading import InputError, labels_from_pixels, read_grey, read_ground_truth, read_image, to_grey
from conftest import example_arrays

#: A real crop of the test split: uint16 grey, background 0, chromosomes up to 186 (so it
#: fits 8 bits unchanged), and its labels 0-3.
IMAGE, LABELS = example_arrays(1)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def save(array: np.ndarray, path, **options) -> str:
    if str(path).endswith((".tif", ".tiff")):
        tifffile.imwrite(path, array, **options)
    else:
        Image.fromarray(array).save(path, **options)
    return str(path)


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


def with_alpha(pixels: np.ndarray, alpha: int) -> np.ndarray:
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    return np.concatenate([channels, np.full((*pixels.shape[:2], 1), alpha, pixels.dtype)], axis=-1)


# --- Every format decodes to the same grey image ---------------------------------------------

LOSSLESS = {
    "grey16.png": lambda image: image,
    "grey16.tif": lambda image: image,
    "grey8.png": lambda image: image.astype(np.uint8),
    "grey8.tif": lambda image: image.astype(np.uint8),
    "grey8.bmp": lambda image: image.astype(np.uint8),
    "grey-alpha8.png": lambda image: with_alpha(image.astype(np.uint8), 255),
    "rgb8.png": lambda image: rgb(image.astype(np.uint8)),
    "rgb8.bmp": lambda image: rgb(image.astype(np.uint8)),
    "rgba8.png": lambda image: with_alpha(rgb(image.astype(np.uint8)), 255),
    "rgb16.tif": lambda image: rgb(image),
    "planar-rgb16.tif": lambda image: np.moveaxis(rgb(image), -1, 0),
}


@pytest.mark.parametrize("name", sorted(LOSSLESS))
def test_lossless_formats_decode_to_the_same_grey_image(tmp_path, name):
    options = {"photometric": "rgb", "planarconfig": "separate"} if name.startswith("planar") else {}
    grey, notes = read_grey(save(LOSSLESS[name](IMAGE), tmp_path / name, **options))
    assert grey.dtype == np.float32 and notes == []
    # RGB -> grey by BT.601 luma: weights summing to 1 up to float32 rounding.
    np.testing.assert_allclose(grey, IMAGE.astype(np.float32), rtol=0, atol=1e-4 if "rgb" in name else 0)


def test_a_float_tiff_keeps_its_values():
    image = IMAGE.astype(np.float32) / 256
    assert np.unique(image).size > 50
    grey, _ = to_grey(image)
    np.testing.assert_array_equal(grey, image)


def test_a_float_tiff_file_keeps_its_values(tmp_path):
    image = IMAGE.astype(np.float32) / 256
    np.testing.assert_array_equal(read_grey(save(image, tmp_path / "float.tif"))[0], image)


@pytest.mark.parametrize("name", ["grey.jpg", "rgb.jpg"])
def test_jpeg_decodes_to_the_same_grey_image_up_to_compression(tmp_path, name):
    pixels = IMAGE.astype(np.uint8)
    grey, _ = read_grey(save(rgb(pixels) if name.startswith("rgb") else pixels, tmp_path / name, quality=95))
    error = np.abs(grey - IMAGE)
    assert error.max() <= 8 and error.mean() < 0.5  # measured: 6 and 0.15


def test_rgb_is_weighted_by_bt601_luma():
    pixels = np.array([[RED, GREEN, BLUE, (10, 20, 30)]], np.uint8)
    grey, _ = to_grey(pixels)
    np.testing.assert_allclose(grey, [[0.299 * 255, 0.587 * 255, 0.114 * 255, 2.99 + 11.74 + 3.42]], rtol=1e-6)


def test_a_palette_image_is_read_by_its_colours(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 200, 200, 200])
    image.save(tmp_path / "palette.png")
    np.testing.assert_allclose(read_grey(tmp_path / "palette.png")[0], [[0, 200], [200, 0]], atol=1e-4)


def test_translucent_alpha_is_dropped_and_said_so(tmp_path):
    grey, notes = read_grey(save(with_alpha(rgb(IMAGE.astype(np.uint8)), 128), tmp_path / "rgba.png"))
    np.testing.assert_allclose(grey, IMAGE, atol=1e-4)
    assert notes == ["transparency (alpha channel) ignored"]


def test_opaque_alpha_is_dropped_silently():
    grey, notes = to_grey(np.full((4, 4, 4), 255, np.uint8))
    np.testing.assert_allclose(grey, np.full((4, 4), 255), atol=1e-4)
    assert notes == []
    grey, notes = to_grey(with_alpha(np.full((4, 4), 1000, np.uint16), 65535))
    np.testing.assert_array_equal(grey, np.full((4, 4), 1000))
    assert notes == []


@pytest.mark.parametrize("shape", [(8, 8, 5), (2, 8, 8, 3), (8,)])
def test_arrays_that_are_not_grey_or_rgb_are_refused(shape):
    with pytest.raises(InputError, match="neither grey nor RGB"):
        to_grey(np.zeros(shape, np.uint8))


def test_not_finite_values_are_refused(tmp_path):
    image = np.zeros((4, 4), np.float32)
    image[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        to_grey(image)
    image[0, 0] = np.inf
    with pytest.raises(InputError, match="nan.tif: the image contains NaN or infinite values"):
        read_grey(save(image, tmp_path / "nan.tif"))


def test_non_numeric_pixels_are_refused():
    with pytest.raises(InputError, match="not grey levels"):
        to_grey(np.array([["a", "b"]]))


# --- Unreadable files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"chromosomes, but in words", "not an image file that can be read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image file that can be read"),
        (b"II*\x00" + b"\x00" * 40, "not a readable TIFF"),
    ],
    ids=["empty", "text", "png-signature-only", "tiff-signature-only"],
)
def test_unreadable_files_raise_input_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"^bad.png: {message}"):
        read_image(path)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg", "cut.tif"])
def test_truncated_files_raise_input_errors(tmp_path, name):
    whole = tmp_path / f"whole_{name}"
    save(np.random.default_rng(0).integers(0, 255, (300, 300), dtype=np.uint8), whole)
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"^{name}: .*(damaged or truncated|not a readable TIFF)"):
        read_image(tmp_path / name)


@pytest.mark.parametrize("name", ["wide.png", "tall.tif"])
def test_images_over_4096_pixels_a_side_are_refused_before_decoding(tmp_path, name):
    shape = (3, 4097) if name.startswith("wide") else (4097, 3)
    path = save(np.zeros(shape, np.uint8), tmp_path / name)
    width, height = shape[1], shape[0]
    with pytest.raises(InputError, match=f"{name}: the image is {width} x {height} pixels .* limit is 4096 x 4096"):
        read_image(path)


def test_an_image_of_4096_pixels_a_side_is_accepted(tmp_path):
    assert read_image(save(np.zeros((4096, 3), np.uint8), tmp_path / "edge.png")).shape == (4096, 3)


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    path = save(np.zeros((64, 64), np.uint8), tmp_path / "big.png")
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 50)
    with pytest.raises(InputError, match=r"^big.png: the file is 0\.0 MB; the limit is 0 MB"):
        read_image(path)


def test_the_size_limit_is_20_mb():
    assert reading.MAX_FILE_BYTES == 20_000_000 and reading.MAX_SIDE == 4096


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="^absent.png: no such file"):
        read_image(tmp_path / "absent.png")


# --- Ground truth ---------------------------------------------------------------------------


def test_ground_truth_as_grey_index_map(tmp_path):
    for name in ("index.png", "index.tif"):
        np.testing.assert_array_equal(read_ground_truth(save(LABELS, tmp_path / name), LABELS.shape), LABELS)


def test_ground_truth_as_palette_index_map(tmp_path):
    image = Image.fromarray(LABELS, mode="P")
    image.putpalette([0, 0, 0, 90, 90, 90, 160, 160, 160, 250, 250, 250])  # grey shades, not colours
    image.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_ground_truth(tmp_path / "palette.png", LABELS.shape), LABELS)


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
    with pytest.raises(InputError, match="binary.png: labels must be 0-3 .* found values 255$"):
        read_ground_truth(path, LABELS.shape)


def test_many_bad_label_values_are_summarised():
    with pytest.raises(InputError, match="found values 4, 5, 6, 7, 8, 9, 10, 11 and 2 more"):
        labels_from_pixels(np.arange(14, dtype=np.uint8).reshape(2, 7))
    with pytest.raises(InputError, match="found values 1.5"):
        labels_from_pixels(np.array([[0.0, 1.5]], np.float32))


def test_ground_truth_with_unknown_colours_is_refused():
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[0, 0] = (255, 255, 0)
    message = r"yellow.png: 1 pixels match none of the class colours .* RGB \(255, 255, 0\)"
    with pytest.raises(InputError, match=message):
        labels_from_pixels(pixels, "yellow.png")
