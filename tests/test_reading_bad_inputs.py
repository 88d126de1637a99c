"""amfl.reading against hostile and odd files: declared sizes checked before decoding
(decompression bombs), pages and frames beyond the first said, float values that would
overflow or are not numbers, and a corpus of bad inputs, each generated in ``tmp_path``."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

import amfl.reading as reading
from amfl.preprocessing import Preprocessor
from amfl.reading import InputError, read_grey, read_image

#: The end of every budget message: what to do instead.
ADVICE = "Save a single grey-level or RGB page"


def tiff_bomb(path, height: int, width: int, samples: int, dtype=np.uint8) -> str:
    """A zlib-compressed TIFF of zeros declaring height x width x samples: one strip per row,
    each the same few compressed bytes, so a file of a few MB that decodes to gigabytes is
    written in milliseconds."""
    strip = zlib.compress(bytes(width * samples * np.dtype(dtype).itemsize), 9)
    tifffile.imwrite(
        path, (strip for _ in range(height)), shape=(height, width, samples), dtype=dtype,
        photometric="minisblack", planarconfig="contig", compression="zlib", rowsperstrip=1,
    )
    return str(path)


def png_header(path, width: int, height: int) -> str:
    """A grey 8-bit PNG declaring width x height, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1))) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return str(path)


def many_frame_gif(path, frames: int) -> str:
    """A 1 x 1 GIF of ``frames`` frames, written byte by byte (Pillow merges equal frames)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 0.1 s a frame
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"  # one pixel, index 0
    path.write_bytes(screen + (control + image) * frames + b";")
    return str(path)


def animation(path, levels=(0, 100, 200)) -> str:
    frames = [Image.fromarray(np.full((8, 8), level, np.uint8)) for level in levels]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return str(path)


def pages(path, levels=(10, 20, 30)) -> str:
    for level in levels:
        tifffile.imwrite(path, np.full((8, 8), level, np.uint8), photometric="minisblack", append=True)
    return str(path)


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


def test_pillows_decompression_bomb_warning_alone_leaves_the_side_limit_message(tmp_path):
    path = png_header(tmp_path / "large.png", 10000, 10000)
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(InputError, match="limit is 4096 x 4096"):
        read_grey(path)


def test_pillows_decompression_bomb_warning_as_an_error_gets_the_budget_message(tmp_path):
    path = png_header(tmp_path / "large.png", 10000, 10000)  # between Pillow's warning and error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"^large\.png: the image declares 100000000 pixels .*" + ADVICE):
            read_grey(path)


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


def save_tiff(image: np.ndarray, path, **options) -> str:
    tifffile.imwrite(path, image, **options)
    return str(path)


# --- A corpus of bad and odd inputs ---------------------------------------------------------


def truncated(path, save) -> None:
    whole = path.with_name("whole" + path.suffix)
    save(whole)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def palette(path) -> None:
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 200, 200, 200])
    image.save(path)


NOISE = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)


def pillow(pixels: np.ndarray, mode: str | None = None):
    def write(path) -> None:
        image = Image.fromarray(pixels)
        (image.convert(mode) if mode else image).save(path)

    return write


def tiff(pixels: np.ndarray):
    return lambda path: tifffile.imwrite(path, pixels)


OTHER_FRAMES = "; the other frames are ignored"

#: name -> (how to write it, what read_grey must say): an error message fragment (regex),
#: or the grey shape and the notes of a success.
CORPUS = {
    "empty.png": (lambda path: path.write_bytes(b""), "the file is empty"),
    "truncated.png": (lambda path: truncated(path, pillow(NOISE)), "damaged or truncated"),
    "truncated.tif": (lambda path: truncated(path, tiff(NOISE)), "damaged or truncated|not a readable TIFF"),
    "words.png": (lambda path: path.write_text("a karyogram, in words"), "not an image file that can be read"),
    "bomb.tif": (lambda path: tiff_bomb(path, 1024, 1024, 2000), r"1024 x 1024 pixels .*\(2097 MB once decoded"),
    "bomb.png": (lambda path: png_header(path, 20000, 20000), "declares 400000000 pixels"),
    "frames.gif": (lambda path: many_frame_gif(path, 20000), ((1, 1), [f"read frame 1 of {20000}{OTHER_FRAMES}"])),
    "1x1.png": (pillow(np.array([[7]], np.uint8)), ((1, 1), [])),
    "grey16.png": (pillow(np.array([[7, 60000]], np.uint16)), ((1, 2), [])),
    "float32.tif": (tiff(NOISE.astype(np.float32) / 255), ((64, 64), [])),
    "nan.tif": (tiff(np.where(np.eye(4), np.nan, 0.5).astype(np.float32)), r"in 4 of 16 pixels \(4 NaN, 0 infinite\)"),
    "pages.tif": (pages, ((8, 8), ["read page 1 of 3; the other pages are ignored"])),
    "anim.gif": (animation, ((8, 8), ["read frame 1 of 3; the other frames are ignored"])),
    "rgba.png": (pillow(np.full((4, 4, 4), 100, np.uint8)), ((4, 4), ["transparency (alpha channel) ignored"])),
    "palette.png": (palette, ((2, 2), [])),
    "cmyk.jpg": (pillow(NOISE, "CMYK"), ((64, 64), [])),
}


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_input_corpus(tmp_path, name):
    make, expected = CORPUS[name]
    path = tmp_path / name
    make(path)
    if isinstance(expected, str):
        with pytest.raises(ValueError) as caught:
            read_grey(path)
        assert type(caught.value) is InputError  # what amfl.predict and amfl.demo catch
        assert str(caught.value).startswith(f"{name}: ")
        assert caught.match(expected)
    else:
        shape, notes = expected
        grey, said = read_grey(path)
        assert grey.dtype == np.float32 and grey.shape == shape and np.isfinite(grey).all()
        assert said == notes
