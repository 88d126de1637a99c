"""A corpus of bad and odd input files, generated in a folder in milliseconds, with what each
front end must say of it: the reader (test_reading_bad_inputs.py), and the command line and
the app's API (test_bad_input_corpus.py), which share one table of expected outcomes so that
both say the same thing.

Each :class:`Case` is a file name, a function writing the file, and either the fragment of
the error message that file must give (after ``NAME: ``) or the grey shape and the notes of
a success. Bombs declare gigabytes in a few MB of compressed zeros and are written without
ever holding their pixels."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

# --- Writers of odd files --------------------------------------------------------------------


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
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return str(path)


def many_frame_gif(path, frames: int) -> str:
    """A 1 x 1 GIF of ``frames`` frames, written byte by byte (Pillow merges equal frames)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 0.1 s a frame
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"  # one pixel, index 0
    Path(path).write_bytes(screen + (control + image) * frames + b";")
    return str(path)


def animation(path, levels=(0, 100, 200)) -> str:
    """An 8 x 8 animation (GIF, PNG or WebP by the suffix) of flat frames; frame 1 is black."""
    frames = [Image.fromarray(np.full((8, 8), level, np.uint8)) for level in levels]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return str(path)


def pages(path, levels=(10, 20, 30)) -> str:
    """An 8 x 8 TIFF of flat grey pages."""
    for level in levels:
        tifffile.imwrite(path, np.full((8, 8), level, np.uint8), photometric="minisblack", append=True)
    return str(path)


def save_tiff(image: np.ndarray, path, **options) -> str:
    tifffile.imwrite(path, image, **options)
    return str(path)


def truncated(path, save: Callable[[Path], object]) -> None:
    """The first half of the file ``save`` writes."""
    path = Path(path)
    whole = path.with_name("whole-" + path.name)
    save(whole)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])


def palette(path) -> None:
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 200, 200, 200])
    image.save(path)


def oversized(path, size: int) -> None:
    """A file of ``size`` bytes (sparse where the file system allows): the PNG signature,
    then zeros."""
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(size)


def pillow(pixels: np.ndarray, mode: str | None = None, **options) -> Callable[[Path], None]:
    """A writer of ``pixels`` with Pillow, format by the suffix (``format=`` overrides it)."""

    def write(path) -> None:
        image = Image.fromarray(pixels)
        (image.convert(mode) if mode else image).save(path, **options)

    return write


def tiff(pixels: np.ndarray, **options) -> Callable[[Path], None]:
    return lambda path: tifffile.imwrite(path, pixels, **options)


def chromosomes(dtype=np.uint8, scale: int = 1) -> np.ndarray:
    """A 64 x 64 picture of two overlapping bars on a dark background (an image the model
    can segment: not flat, not light)."""
    image = np.full((64, 64), 10, dtype)
    image[8:56, 20:30] = 120
    image[26:36, 8:56] = 120
    image[26:36, 20:30] = 220
    return image * dtype(scale)


#: Random grey levels, the same on every run.
NOISE = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
BARS = chromosomes()

# --- The corpus ------------------------------------------------------------------------------

#: The end of every budget message: what to do instead.
ADVICE = "Save a single grey-level or RGB page"
OTHER_FRAMES = "; the other frames are ignored"
OTHER_PAGES = "; the other pages are ignored"
ALPHA = "transparency (alpha channel) ignored"
#: Names a file system may refuse (a control character); such cases are left out there.
CONTROL_NAME = "line\nbreak\ttab.png"
#: 240 characters in all, under the 255 bytes of most file systems.
LONG_NAME = "long-" + "n" * 231 + ".png"
UNICODE_NAME = "Métaphase 1 (copie).png"


@dataclass(frozen=True)
class Case:
    """One file of the corpus and what must be said of it.

    Attributes:
        name: the file's name.
        make: writes the file at the path it is given.
        error: for a file that must be refused, a fragment of the reader's message (plain
            text, after ``NAME: ``), which the command line's status and stderr line and the
            app's status text must carry too.
        shape: for a file that must be read, the (H, W) grey shape.
        notes: for a file that must be read, the reader's notes, in order (the front ends
            show them, with what the segmentation adds).
        kind: what the case is about, for reports.
    """

    name: str
    make: Callable[[Path], object]
    error: str | None = None
    shape: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()
    kind: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def write(self, folder: Path) -> Path:
        path = Path(folder) / self.name
        self.make(path)
        return path


def _refused(name: str, make, error: str, kind: str) -> Case:
    return Case(name, make, error=error, kind=kind)


def _read(name: str, make, shape: tuple[int, int], kind: str, *notes: str) -> Case:
    return Case(name, make, shape=shape, notes=notes, kind=kind)


CASES: tuple[Case, ...] = (
    # Not images, or not whole ones.
    _refused("empty.png", lambda path: path.write_bytes(b""), "the file is empty", "empty"),
    _refused("truncated.png", lambda path: truncated(path, pillow(NOISE)), "the image data is damaged or truncated",
             "truncated PNG"),
    _refused("truncated.tif", lambda path: truncated(path, tiff(NOISE)), "not a readable TIFF",
             "truncated TIFF"),
    _refused("words.png", lambda path: path.write_text("a karyogram, in words"),
             "not an image file that can be read (accepted: PNG, TIFF 8/16-bit, JPEG, BMP)", "text named .png"),
    # Bombs and huge images: refused from what they declare, before decoding.
    _refused("bomb.tif", lambda path: tiff_bomb(path, 1024, 1024, 2000),
             "the image declares 1024 x 1024 pixels (width x height) with 2000 samples of 8 bits "
             "(2097 MB once decoded; the limit is 134 MB). " + ADVICE, "TIFF bomb"),
    _refused("bomb.png", lambda path: png_header(path, 20000, 20000),
             "the image declares 400000000 pixels (at least 400 MB once decoded; the limit is 134 MB). " + ADVICE,
             "PNG bomb (over Pillow's limit)"),
    _refused("huge.png", lambda path: png_header(path, 10000, 10000),
             "the image is 10000 x 10000 pixels (width x height); the limit is 4096 x 4096. Crop or downscale it "
             "first.", "huge PNG (between Pillow's warning and error)"),
    _refused("wide.tif", tiff(np.zeros((1, 5000), np.uint8)),
             "the image is 5000 x 1 pixels (width x height); the limit is 4096 x 4096", "wide TIFF"),
    _refused("big.png", lambda path: oversized(path, 21_000_000), "the file is 21.0 MB; the limit is 20 MB",
             "file over 20 MB"),
    _refused("nan.tif", tiff(np.where(np.eye(4), np.nan, 0.5).astype(np.float32)),
             "the image contains NaN or infinite values in 4 of 16 pixels (4 NaN, 0 infinite)", "NaN float TIFF"),
    # Odd but readable.
    _read("frames.gif", lambda path: many_frame_gif(path, 20000), (1, 1), "20000-frame GIF",
          f"read frame 1 of 20000{OTHER_FRAMES}"),
    _read("1x1.png", pillow(np.array([[7]], np.uint8)), (1, 1), "tiny"),
    _read("grey16.png", pillow(np.array([[7, 60000]], np.uint16)), (1, 2), "16-bit PNG"),
    _read("grey16.tif", tiff(chromosomes(np.uint16, 250)), (64, 64), "16-bit TIFF"),
    _read("float32.tif", tiff(NOISE.astype(np.float32) / 255), (64, 64), "float32 TIFF"),
    _read("float64-huge.tif", tiff(chromosomes(np.float64) * 1e300), (64, 64), "float64 TIFF beyond float32",
          "float grey levels as large as 2.2e+302 multiplied by 2^-1005, to keep them within float32 (the "
          "segmentation depends on relative grey levels only)"),
    _read("pages.tif", pages, (8, 8), "multi-page TIFF", f"read page 1 of 3{OTHER_PAGES}"),
    _read("anim.gif", animation, (8, 8), "animated GIF", f"read frame 1 of 3{OTHER_FRAMES}"),
    _read("anim.webp", animation, (8, 8), "animated WebP", f"read frame 1 of 3{OTHER_FRAMES}"),
    _read("rgba.png", pillow(np.full((4, 4, 4), 100, np.uint8)), (4, 4), "RGBA", ALPHA),
    _read("palette.png", palette, (2, 2), "palette"),
    _read("cmyk.jpg", pillow(NOISE, "CMYK"), (64, 64), "CMYK JPEG"),
    # Odd names: the reader judges by content; the command line takes the folder, never a name.
    _read(UNICODE_NAME, pillow(BARS), (64, 64), "spaces, unicode, parentheses"),
    _read("-x.png", pillow(BARS), (64, 64), "leading dash"),
    _read(CONTROL_NAME, pillow(BARS), (64, 64), "newline and tab in the name"),
    _read(LONG_NAME, pillow(BARS), (64, 64), "240-character name"),
    _read("png-named.tif", pillow(BARS, format="PNG"), (64, 64), "PNG named .tif"),
    _read("tiff-named.png", tiff(chromosomes(np.uint16, 250)), (64, 64), "TIFF named .png"),
    _refused("empty named.tif", lambda path: path.write_bytes(b""), "the file is empty", "space in a failing name"),
)
CORPUS: dict[str, Case] = {case.name: case for case in CASES}
assert len(CORPUS) == len(CASES), "corpus names must be distinct"


def name_allowed(folder: Path, name: str) -> bool:
    """Whether the file system of ``folder`` takes a file called ``name``."""
    probe = Path(folder) / name
    try:
        probe.write_bytes(b"")
    except (OSError, ValueError):
        return False
    probe.unlink()
    return True


def write_corpus(folder: Path, cases: Iterable[Case] = CASES) -> list[Case]:
    """Write ``cases`` into ``folder`` (created if needed); the cases written, in order:
    those whose names the file system refuses are left out."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for case in cases:
        if name_allowed(folder, case.name):
            case.write(folder)
            written.append(case)
    return written


def skipped_names(cases: Iterable[Case]) -> list[str]:
    """Names of CASES not in ``cases`` (left out by the file system)."""
    kept = {case.name for case in cases}
    return [case.name for case in CASES if case.name not in kept]

