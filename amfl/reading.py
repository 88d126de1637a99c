"""Reading image and ground-truth files, for the app and the command line.

A file is read with tifffile (TIFF) or Pillow (PNG, JPEG, BMP, ...), checked against the
size limits (file size, pixels a side, and the bytes its first page declares once decoded)
before its pixels are decoded, and reduced to one grey channel in the file's own units.
Every problem with an input file is an :class:`InputError` whose message names the file and
says what is wrong, so a UI can show it instead of a traceback; what is read but not used (the
pages or frames after the first, transparency) is said in notes.
"""

from __future__ import annotations

import math
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, UnidentifiedImageError

from amfl.metrics import NUM_CLASSES
from amfl.pictures import CLASS_COLOURS

#: Largest accepted image, pixels per side.
MAX_SIDE = 4096
#: Largest accepted file, bytes (20 MB).
MAX_FILE_BYTES = 20 * 1000 * 1000
#: Largest accepted decoded page, bytes, computed from the dimensions a file declares before
#: any pixel is decoded: a few MB of compressed zeros can declare gigabytes (1024 x 1024 pixels
#: of 2000 samples: 2.1 GB). Sized for the largest ordinary image of the accepted size, RGBA at
#: 16 bits a sample, MAX_SIDE x MAX_SIDE (134 MB): grey and RGB(A) at 8 or 16 bits and grey
#: float32 or float64 always fit; only extra samples, or colour in 32- or 64-bit floats at
#: full size, go over.
MAX_DECODED_BYTES = MAX_SIDE * MAX_SIDE * 4 * 2
#: Float grey levels are kept in the file's units unless their largest magnitude is over
#: 2**64 or (non-zero) under 2**-64: then they are multiplied by a power of two, which keeps
#: their ratios exactly, into 0.5..1. Larger values overflow float32 in sums and differences
#: (background level, polarity midpoint) or do not fit float32 at all (float64 files);
#: smaller ones fall below float32's precision. The segmentation uses relative levels only.
_FLOAT_MAGNITUDE = 2.0**64
#: ITU-R BT.601 luma weights: RGB -> grey the way most viewers do it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_COLOURS = np.array(CLASS_COLOURS, dtype=np.float32)
#: A colour-coded ground truth may be anti-aliased or JPEG-compressed: a pixel counts as a
#: class colour when within this Euclidean RGB distance of it (half the red-black distance)...
_COLOUR_TOLERANCE = 127.0
#: ... and at most this fraction of the pixels may be farther (JPEG blends at class edges).
_UNKNOWN_COLOUR_FRACTION = 0.01


class InputError(ValueError):
    """An input file cannot be used; the message names it and says why, for the user."""


def read_image(path: str | Path, *, palette_indices: bool = False) -> np.ndarray:
    """Pixels of an image file as stored: (H, W) or (H, W, C), any integer or float dtype.

    Palette images come back as RGB(A) unless ``palette_indices`` (for index label maps); a
    multi-page TIFF or an animation gives its first page or frame (:func:`read_pixels` says so).
    Raises InputError for a missing, empty, oversized, truncated or non-image file.
    """
    return read_pixels(path, palette_indices=palette_indices)[0]


def read_pixels(path: str | Path, *, palette_indices: bool = False) -> tuple[np.ndarray, list[str]]:
    """:func:`read_image`, plus notes on what was not read ("read page 1 of 3; ...")."""
    path = Path(path)
    check_file(path)
    if _looks_like_tiff(path):
        try:
            return _read_tiff(path)
        except InputError:
            raise
        except Exception as tiff_error:  # tifffile raises many types for damaged files
            try:
                return _read_with_pillow(path, palette_indices)
            except InputError:
                raise InputError(f"{path.name}: not a readable TIFF ({tiff_error})") from None
    return _read_with_pillow(path, palette_indices)


def read_grey(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """An image file -> (H, W) float32 grey in the file's units, plus notes on what was
    dropped on the way (see :func:`to_grey`); errors name the file."""
    pixels, notes = read_pixels(path)
    try:
        grey, more = to_grey(pixels)
    except InputError as error:
        raise InputError(f"{Path(path).name}: {error}") from None
    return grey, notes + more


def check_file(path: Path) -> None:
    """Refuse what cannot be an image before decoding it: missing, empty or over 20 MB."""
    if not path.is_file():
        raise InputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path.name}: the file is {size / 1e6:.1f} MB; the limit is "
            f"{MAX_FILE_BYTES / 1e6:.0f} MB"
        )


def check_dimensions(name: str, height: int, width: int) -> None:
    if height > MAX_SIDE or width > MAX_SIDE:
        raise InputError(
            f"{name}: the image is {width} x {height} pixels (width x height); the limit is "
            f"{MAX_SIDE} x {MAX_SIDE}. Crop or downscale it first."
        )
    if height < 1 or width < 1:
        raise InputError(f"{name}: the image has no pixels ({width} x {height})")


def declared_shape(path: str | Path) -> tuple[int, int] | None:
    """(height, width) that an image file declares (its first page or frame), read from its
    header by Pillow, else tifffile, without decoding any pixel; None when neither can read
    it (:func:`read_pixels` then says why). The app sorts requests by it (amfl.demo_gate)."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except Exception:  # Pillow raises many types for what it cannot open
        pass
    try:
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            return int(page.imagelength), int(page.imagewidth)
    except Exception:  # not a TIFF either, or a damaged one
        return None


def _looks_like_tiff(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def check_decoded_size(name: str, declared: str, decoded: int) -> None:
    """Refuse a page of ``decoded`` bytes over MAX_DECODED_BYTES, before decoding it;
    ``declared`` says what the file declares, for the message."""
    if decoded > MAX_DECODED_BYTES:
        raise _too_large(name, declared, decoded)


def _too_large(name: str, declared: str, decoded: int, at_least: str = "") -> InputError:
    return InputError(
        f"{name}: the image declares {declared} ({at_least}{_megabytes(decoded)} MB once decoded; "
        f"the limit is {_megabytes(MAX_DECODED_BYTES)} MB). Save a single grey-level or RGB page "
        f"of at most {MAX_SIDE} x {MAX_SIDE} pixels, 8 or 16 bits a sample, and use that."
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f}" if size >= 1e7 else f"{size / 1e6:.3g}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _not_read(count: int, what: str) -> list[str]:
    return [f"read {what} 1 of {count}; the other {what}s are ignored"] if count > 1 else []


def _read_tiff(path: Path) -> tuple[np.ndarray, list[str]]:
    """The first page of a TIFF; its dimensions and decoded size are checked from its tags
    before the pixels are decoded."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        height, width, depth = int(page.imagelength), int(page.imagewidth), int(page.imagedepth)
        check_dimensions(path.name, height, width)
        bits, samples = int(page.bitspersample), int(page.samplesperpixel)
        itemsize = page.dtype.itemsize if page.dtype is not None else -(-bits // 8)
        declared = f"{width} x {height} pixels (width x height)" + (f" x {depth} deep" if depth > 1 else "")
        declared += f" with {_plural(samples, 'sample')} of {bits} bits"
        check_decoded_size(path.name, declared, math.prod(page.shaped) * itemsize)
        notes = _not_read(len(tiff.pages), "page")
        array = page.asarray()
    if array.ndim == 3 and array.shape[0] <= 4 < array.shape[-1]:
        array = np.moveaxis(array, 0, -1)  # planar RGB(A): samples first
    return array, notes


def _read_with_pillow(path: Path, palette_indices: bool) -> tuple[np.ndarray, list[str]]:
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr, with its path) between MAX_IMAGE_PIXELS and twice that;
            # check_dimensions then refuses the image in words, and beyond it Pillow raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            check_dimensions(path.name, image.height, image.width)
            bands = Image.getmodebands(image.mode)
            itemsize = np.dtype(ImageMode.getmode(image.mode).typestr).itemsize
            declared = (
                f"{image.width} x {image.height} pixels (width x height) in mode {image.mode} "
                f"({_plural(bands, 'band')} of {8 * itemsize} bits)"
            )
            check_decoded_size(path.name, declared, image.width * image.height * bands * itemsize)
            notes = _not_read(getattr(image, "n_frames", 1), "frame")
            image.load()
            return _pillow_pixels(image, palette_indices), notes
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(
            f"{path.name}: not an image file that can be read (accepted: PNG, TIFF 8/16-bit, "
            "JPEG, BMP)"
        ) from None
    except Image.DecompressionBombError as error:
        # Pillow's own limit (twice Image.MAX_IMAGE_PIXELS), hit on opening; its message
        # holds the declared pixel count.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else int(Image.MAX_IMAGE_PIXELS or 0)
        declared = f"{pixels} pixels" if found else f"over {pixels} pixels"
        raise _too_large(path.name, declared, pixels, at_least="at least ") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:  # damaged data
        raise InputError(f"{path.name}: the image data is damaged or truncated ({error})") from None


def _pillow_pixels(image: Image.Image, palette_indices: bool) -> np.ndarray:
    """Pillow image -> array keeping 16-bit and float values; odd modes become RGB."""
    if image.mode == "P" and palette_indices and _palette_is_index_map(image):
        return np.asarray(image)
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    return np.asarray(image)


def _palette_is_index_map(image: Image.Image) -> bool:
    """A palette label map is read by its indices (0-3), unless the colours it uses are
    distinct class colours of the paper, in any order: then by colour, as a person sees it."""
    used = np.unique(np.asarray(image))
    palette = np.asarray(image.getpalette("RGB") or [], dtype=np.float32).reshape(-1, 3)
    if used.max() >= len(palette):
        return True
    distances = np.linalg.norm(palette[used][:, None] - _COLOURS, axis=-1)
    classes = distances.argmin(axis=-1)
    is_colour_map = (distances.min(axis=-1) <= _COLOUR_TOLERANCE).all() and len(
        set(classes.tolist())
    ) == len(used)
    return not is_colour_map


def to_grey(pixels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(H, W[, C]) pixels -> (H, W) float32 grey in the file's own units, plus notes.

    Grey with or without alpha and RGB with or without alpha are accepted; alpha is dropped
    (a chromosome image carries no meaning in its transparency) and said so when it was not
    fully opaque.
    """
    pixels = np.asarray(pixels)
    notes: list[str] = []
    if pixels.dtype.kind not in "biuf":
        raise InputError(f"pixels of type {pixels.dtype} are not grey levels")
    if pixels.dtype.kind == "f":
        _check_finite(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] in (2, 4):
        alpha = pixels[..., -1]
        if alpha.min() < _opaque_value(pixels.dtype):
            notes.append("transparency (alpha channel) ignored")
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.dtype.kind == "f":
        pixels = _within_float32(pixels, notes)
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        pixels = pixels.astype(np.float32) @ _LUMA
    if pixels.ndim != 2:
        raise InputError(
            f"an image of shape {pixels.shape} is neither grey nor RGB; expected height x width "
            "with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels"
        )
    return pixels.astype(np.float32), notes


def _check_finite(pixels: np.ndarray) -> None:
    """Refuse NaN or infinite values, counted by pixel (any of its samples)."""
    finite = np.isfinite(pixels)
    if finite.all():
        return

    def pixels_where(mask: np.ndarray) -> int:
        return int(mask.reshape(mask.shape[:2] + (-1,)).any(axis=-1).sum())

    total = math.prod(pixels.shape[:2])
    raise InputError(
        f"the image contains NaN or infinite values in {pixels_where(~finite)} of {total} pixels "
        f"({pixels_where(np.isnan(pixels))} NaN, {pixels_where(np.isinf(pixels))} infinite); "
        "give them a grey level (e.g. 0) and save the image again"
    )


def _within_float32(pixels: np.ndarray, notes: list[str]) -> np.ndarray:
    """Finite float grey levels, multiplied by a power of two into 0.5..1 when their largest
    magnitude is outside 2**-64..2**64 (see _FLOAT_MAGNITUDE), with a note."""
    if pixels.size == 0:
        return pixels
    peak = max(float(pixels.max()), -float(pixels.min()))
    if peak == 0 or 1 / _FLOAT_MAGNITUDE <= peak <= _FLOAT_MAGNITUDE:
        return pixels
    exponent = int(np.frexp(peak)[1])
    notes.append(
        f"float grey levels as large as {peak:.3g} multiplied by 2^{-exponent}, to keep them "
        "within float32 (the segmentation depends on relative grey levels only)"
    )
    return np.ldexp(pixels, -exponent)


def _opaque_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def read_ground_truth(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth file -> (H, W) uint8 labels 0-3, checked against the image's ``shape``.

    Accepted: an index map (grey or palette PNG/TIFF with values 0-3) or the paper's colour
    coding (black background, red, green, blue overlap), of one page or frame: which page of
    several holds the labels cannot be guessed, so several are refused.
    """
    path = Path(path)
    pixels, notes = read_pixels(path, palette_indices=True)
    if notes:  # the only notes a first page or frame gets: the ones not read
        raise InputError(f"{path.name}: the ground truth has several pages or frames ({notes[0]}); "
                         "give it as a single-page label map")
    labels = labels_from_pixels(pixels, path.name)
    if labels.shape != tuple(shape):
        raise InputError(
            f"{path.name}: the ground truth is {labels.shape[1]} x {labels.shape[0]} pixels but "
            f"the image is {shape[1]} x {shape[0]} (width x height); they must match"
        )
    return labels


def labels_from_pixels(pixels: np.ndarray, name: str = "ground truth") -> np.ndarray:
    """Index map or colour-coded map -> (H, W) uint8 labels 0-3."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] in (2, 4):
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and (pixels.shape[-1] == 1 or _channels_equal(pixels)):
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        return _labels_from_colours(pixels, name)
    if pixels.ndim != 2 or pixels.dtype.kind not in "biuf":
        raise InputError(f"{name}: a ground truth of shape {pixels.shape} is not a label map")
    values = np.unique(pixels)
    outside = values[(values < 0) | (values >= NUM_CLASSES) | (values != np.round(values))]
    if outside.size:
        shown = ", ".join(f"{value:g}" for value in outside[:8].tolist())
        raise InputError(
            f"{name}: labels must be 0-3 (0 background, 1 and 2 the chromosomes, 3 overlap) "
            f"or the paper's colours; found values {shown}"
            + (f" and {outside.size - 8} more" if outside.size > 8 else "")
        )
    return pixels.astype(np.uint8)


def _channels_equal(pixels: np.ndarray) -> bool:
    return bool((pixels == pixels[..., :1]).all())


def _labels_from_colours(rgb: np.ndarray, name: str) -> np.ndarray:
    """Nearest paper colour per pixel. A few pixels far from every class colour are edge
    blends of compression or anti-aliasing and keep the nearest; more than
    ``_UNKNOWN_COLOUR_FRACTION`` of them means the picture is not a colour-coded label map."""
    distances = np.linalg.norm(rgb[..., None, :].astype(np.float32) - _COLOURS, axis=-1)
    unknown = distances.min(axis=-1) > _COLOUR_TOLERANCE
    if unknown.mean() > _UNKNOWN_COLOUR_FRACTION:
        example = tuple(int(value) for value in rgb[unknown][0])
        raise InputError(
            f"{name}: {int(unknown.sum())} pixels match none of the class colours (black "
            f"background, red, green, blue overlap), e.g. RGB {example}; a ground truth is an "
            "index map with values 0-3 or uses these colours"
        )
    return distances.argmin(axis=-1).astype(np.uint8)
