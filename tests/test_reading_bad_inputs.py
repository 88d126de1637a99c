"""amfl.reading against hostile and odd files: declared sizes checked before decoding
(decompression bombs), pages and frames beyond the first said, float values that would
overflow or are not numbers, and a corpus of bad inputs (tests/bad_inputs.py), each generated
in ``tmp_path``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

import amfl.reading as reading
from amfl.preprocessing import Preprocessor
from amfl.reading import InputError, read_grey, read_ground_truth, read_image
from bad_inputs import ADVICE, CORPUS, animation, name_allowed, pages, png_header, save_tiff, tiff_bomb


@pytest.fixture
def decoding_spy(monkeypatch):
    """Every call that would decode TIFF or Pillow pixels, recorded; none of them decodes."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[0])
        raise AssertionError("pixels decoded")

    for owner in (tifffile.TiffPage, tifffile.TiffFile):
        monkeypatch.setattr(owner, "asarray", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


# --- Decompression bombs ---------------------------------------------------------------------


def test_a_tiff_declaring_gigabytes_is_refused_before_decoding(tmp_path, decoding_spy):
    path = tiff_bomb(tmp_path / "bomb.tif", 1024, 1024, 2000)
    assert (tmp_path / "bomb.tif").stat().st_size < 3_000_000  # 2.1 GB declared
    with pytest.raises(InputError) as caught:
        read_grey(path)
    message = str(caught.value)
    assert message.startswith("bomb.tif: the image declares 1024 x 1024 pixels (width x height) with 2000 samples")
    assert "2097 MB once decoded; the limit is 134 MB" in message and ADVICE in message
    assert decoding_spy == []


def test_the_budget_admits_a_4096_rgba_16_bit_tiff_and_no_more(tmp_path, monkeypatch):
    assert reading.MAX_DECODED_BYTES == 4096 * 4096 * 4 * 2
    decoded = []

    def decode(page, *args, **kwargs):
        decoded.append(page)
        return np.zeros((2, 2, 4), np.uint16)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", decode)
    assert read_image(tiff_bomb(tmp_path / "rgba16.tif", 4096, 4096, 4, np.uint16)).shape == (2, 2, 4)
    assert len(decoded) == 1
    with pytest.raises(InputError, match=r"^rgba32\.tif: .* with 4 samples of 32 bits \(268 MB once decoded"):
        read_image(tiff_bomb(tmp_path / "rgba32.tif", 4096, 4096, 4, np.float32))
    assert len(decoded) == 1


def test_pillows_decompression_bomb_error_gets_the_budget_message(tmp_path):
    path = png_header(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(InputError, match=r"^huge\.png: the image declares 400000000 pixels .*the limit is 134 MB"):
        read_grey(path)


@pytest.mark.parametrize("warnings_as", ["default", "error"])
def test_an_image_between_pillows_warning_and_error_limits_gets_the_side_limit_message_silently(tmp_path, warnings_as):
    path = png_header(tmp_path / "large.png", 10000, 10000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(warnings_as)
        with pytest.raises(InputError, match=r"^large\.png: the image is 10000 x 10000 pixels .*limit is 4096 x 4096"):
            read_grey(path)
    assert not caught, [str(warning.message) for warning in caught]


def test_a_pillow_frame_over_the_budget_is_refused_before_loading(tmp_path, monkeypatch):
    path = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((32, 40, 4), np.uint8)).save(path)
    monkeypatch.setattr(reading, "MAX_DECODED_BYTES", 4000)
    calls = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: calls.append(image))
    message = r"^rgba\.png: the image declares 40 x 32 pixels \(width x height\) in mode RGBA \(4 bands of 8 bits\)"
    with pytest.raises(InputError, match=message + r" \(0\.00512 MB once decoded; the limit is 0\.004 MB"):
        read_grey(path)
    assert calls == []


# --- Pages and frames beyond the first ------------------------------------------------------


def test_a_multi_page_tiff_is_read_from_its_first_page_and_says_so(tmp_path):
    path = pages(tmp_path / "stack.tif")
    grey, notes = read_grey(path)
    np.testing.assert_array_equal(grey, np.full((8, 8), 10))
    assert notes == ["read page 1 of 3; the other pages are ignored"]
    np.testing.assert_array_equal(read_image(path), np.full((8, 8), 10, np.uint8))


def test_a_single_page_tiff_has_no_page_note(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.full((8, 8), 10, np.uint8))
    assert read_grey(tmp_path / "one.tif")[1] == []


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp"])
def test_an_animation_is_read_from_its_first_frame_and_says_so(tmp_path, name):
    grey, notes = read_grey(animation(tmp_path / name))
    assert grey.shape == (8, 8) and np.abs(grey).max() <= 1  # frame 1 is black
    assert notes == ["read frame 1 of 3; the other frames are ignored"]


# --- Float values ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_float_values_are_scaled_without_overflow(tmp_path, dtype):
    peak = 3.0e38 if dtype == np.float32 else 1.0e300
    image = np.zeros((32, 32), dtype)
    image[8:24, 8:24] = peak
    image[12:20, 12:20] = peak / 2
    image[0, 0] = -peak  # the border median stays 0
    grey, notes = read_grey(save_tiff(image, tmp_path / "huge.tif"))
    assert grey.dtype == np.float32 and np.isfinite(grey).all()
    assert len(notes) == 1 and notes[0].startswith(f"float grey levels as large as {peak:.3g} multiplied by 2^-")
    np.testing.assert_allclose(grey / grey.max(), image / image.max(), rtol=1e-6)
    prepared = Preprocessor().prepare(grey[None])
    assert np.isfinite(prepared.images).all() and prepared.images.max() == 1


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_tiny_float64_values_are_scaled_instead_of_vanishing_in_float32(tmp_path):
    image = np.zeros((8, 8), np.float64)
    image[2:6, 2:6] = 1e-50
    grey, notes = read_grey(save_tiff(image, tmp_path / "tiny.tif"))
    np.testing.assert_allclose(grey / grey.max(), image / image.max())
    assert notes[0].startswith("float grey levels as large as 1e-50 multiplied by 2^")


def test_ordinary_float_values_are_kept_as_they_are(tmp_path):
    image = np.linspace(-2, 1e6, 64, dtype=np.float32).reshape(8, 8)
    grey, notes = read_grey(save_tiff(image, tmp_path / "counts.tif"))
    np.testing.assert_array_equal(grey, image)
    assert notes == []


def test_an_empty_float_array_stays_empty():
    assert reading.to_grey(np.zeros((0, 0), np.float32))[0].shape == (0, 0)


def test_not_finite_pixels_are_counted(tmp_path):
    image = np.zeros((4, 4, 3), np.float32)
    image[0, 0, 1] = np.nan
    image[1, 1] = np.inf
    image[2, 2, 0] = -np.inf
    message = r"^nan\.tif: the image contains NaN or infinite values in 3 of 16 pixels \(1 NaN, 2 infinite\)"
    with pytest.raises(InputError, match=message):
        read_grey(save_tiff(image, tmp_path / "nan.tif", photometric="rgb"))


# --- A corpus of bad and odd inputs (tests/bad_inputs.py; the CLI and the app on it: ------
# --- test_bad_input_corpus.py) -------------------------------------------------------------


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_input_corpus(tmp_path, name):
    case = CORPUS[name]
    if not name_allowed(tmp_path, name):
        pytest.skip(f"the file system refuses the name {name!r}")
    path = case.write(tmp_path)
    if not case.ok:
        with pytest.raises(ValueError) as caught:
            read_grey(path)
        assert type(caught.value) is InputError  # what amfl.predict and amfl.demo catch
        message = str(caught.value)
        assert message.startswith(f"{name}: ") and case.error in message
    else:
        grey, said = read_grey(path)
        assert grey.dtype == np.float32 and grey.shape == case.shape and np.isfinite(grey).all()
        assert said == list(case.notes)


def test_a_ground_truth_of_several_pages_is_refused_not_read_from_its_first(tmp_path):
    pages = np.zeros((2, 94, 93), np.uint8)
    pages[1, 10:20, 10:20] = 1  # the labels could be on any page
    tifffile.imwrite(tmp_path / "x_label.tif", pages)
    with pytest.raises(InputError, match=r"x_label.tif: the ground truth has several pages .*read page 1 of 2"):
        read_ground_truth(tmp_path / "x_label.tif", (94, 93))
    tifffile.imwrite(tmp_path / "one_label.tif", pages[1])
    np.testing.assert_array_equal(read_ground_truth(tmp_path / "one_label.tif", (94, 93)), pages[1])
