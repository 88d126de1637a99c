"""Reading image and ground-truth files, for the app and the command line.

A file is read with tifffile (TIFF) or Pillow (PNG, JPEG, BMP, ...), checked against the
size limits before its pixels are decoded, and reduced to one grey channel in the file's own
units. Every problem with an input file is an :class:`InputError` whose message names the
file and says what is wrong, so a UI can show it instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from amfl.metrics import NUM_CLASSES
from amfl.pictures import CLASS_COLOURS

#: Largest accepted image, pixels per side.
MAX_SIDE = 4096
#: Largest accepted file, bytes (20 MB).
MAX_FILE_BYTES = 20 * 1000 * 1000
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

    Palette images come back as RGB(A) unless ``palette_indices`` (for index label maps).
    Raises InputError for a missing, empty, oversized, truncated or non-image file.
    """
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
    pixels = read_image(path)
    try:
        return to_grey(pixels)
    except InputError as error:
        raise InputError(f"{Path(path).name}: {error}") from None


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


def _looks_like_tiff(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _read_tiff(path: Path) -> np.ndarray:
    """The first page of a TIFF; the dimensions are checked before the pixels are decoded."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        check_dimensions(path.name, int(page.imagelength), int(page.imagewidth))
        array = page.asarray()
    if array.ndim == 3 and array.shape[0] <= 4 < array.shape[-1]:
        array = np.moveaxis(array, 0, -1)  # planar RGB(A): samples first
    return array


def _read_with_pillow(path: Path, palette_indices: bool) -> np.ndarray:
    try:
        with Image.open(path) as image:
            check_dimensions(path.name, image.height, image.width)
            image.load()
            return _pillow_pixels(image, palette_indices)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(
            f"{path.name}: not an image file that can be read (accepted: PNG, TIFF 8/16-bit, "
            "JPEG, BMP)"
        ) from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{path.name}: the image is far larger than the limit of {MAX_SIDE} x {MAX_SIDE} "
            "pixels"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
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
    if pixels.ndim == 3 and pixels.shape[-1] in (2, 4):
        alpha = pixels[..., -1]
        if alpha.min() < _opaque_value(pixels.dtype):
            notes.append("transparency (alpha channel) ignored")
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        pixels = pixels.astype(np.float32) @ _LUMA
    if pixels.ndim != 2:
        raise InputError(
            f"an image of shape {pixels.shape} is neither grey nor RGB; expected height x width "
            "with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels"
        )
    grey = pixels.astype(np.float32)
    if not np.isfinite(grey).all():
        raise InputError("the image contains NaN or infinite values")
    return grey, notes


def _opaque_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def read_ground_truth(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth file -> (H, W) uint8 labels 0-3, checked against the image's ``shape``.

    Accepted: an index map (grey or palette PNG/TIFF with values 0-3) or the paper's colour
    coding (black background, red, green, blue overlap).
    """
    path = Path(path)
    labels = labels_from_pixels(read_image(path, palette_indices=True), path.name)
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
