"""Any image file in -> label map, coloured overlay, the two separated chromosomes, scores.

The one code path behind the browser demo (``amfl.demo``) and the command line
(``amfl.predict``); neither re-implements a step. A file is read with tifffile (TIFF) or
Pillow (PNG, JPEG, BMP, ...), checked against the size limits, reduced to one grey channel,
brought to the polarity of the training data (bright chromosomes on a background of 0),
preprocessed by :func:`amfl.preprocessing.prepare_images` exactly as in training, segmented,
and cropped back to the original size.

Every problem with an input file is an :class:`InputError` whose message names the file and
says what is wrong, so a UI can show it instead of a traceback.
"""

from __future__ import annotations

import csv
import math
import os
import threading
import time
from contextlib import nullcontext
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from amfl.data.pairs import CLASS_COLOURS
from amfl.metrics import METRIC_NAMES, METRIC_UNITS, NUM_CLASSES, score_batch
from amfl.models.folding import fold_batch_norms
from amfl.data.protocol import PAPER_SIZE
from amfl.preprocessing import SIZE_MULTIPLE, network_size, prepare_images

#: Largest accepted image, pixels per side (see LARGE_IMAGE_PIXELS for what it costs).
MAX_SIDE = 4096
#: Images above this many pixels are segmented one at a time: a 4096 x 4096 image peaks at
#: about 12 GB of memory in amfl-small on CPU (2 minutes on one core), two at once may not fit.
LARGE_IMAGE_PIXELS = 2048 * 2048
#: Largest accepted file, bytes (20 MB).
MAX_FILE_BYTES = 20 * 1000 * 1000
#: Environment variable naming the model: a local folder or a Hub id.
MODEL_ENV = "AMFL_MODEL"
#: Smaller images are padded to this side, the training size, so they see the same context.
TRAINING_SIZE = PAPER_SIZE[0]
#: Environment variable setting torch's CPU threads for the app (the CLI has --threads).
THREADS_ENV = "AMFL_THREADS"
#: One thread per request: on a small shared CPU a second OpenMP thread of this small
#: network mostly waits (25x slower at 128 x 128 on a busy 2-core machine), and a web
#: server runs requests side by side instead.
DEFAULT_THREADS = 1
#: The bundled model of the Space, used when ``AMFL_MODEL`` is not set.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "space" / "model"

#: Label values of the two chromosomes' exclusive parts and of their overlap.
FIRST, SECOND, OVERLAP = 1, 2, 3
_COLOURS = np.array(CLASS_COLOURS, dtype=np.uint8)
#: ITU-R BT.601 luma weights: RGB -> grey the way most viewers do it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: A colour-coded ground truth may be anti-aliased or JPEG-compressed: a pixel counts as a
#: class colour when within this Euclidean RGB distance of it (half the red-black distance)...
_COLOUR_TOLERANCE = 127.0
#: ... and at most this fraction of the pixels may be farther (JPEG blends at class edges).
_UNKNOWN_COLOUR_FRACTION = 0.01
#: Difference image: correctly segmented chromosome pixels (dark grey) and wrongly predicted
#: background (white, since the paper's background colour, black, would not show).
_DIFFERENCE_CORRECT = (64, 64, 64)
_DIFFERENCE_MISSED = (255, 255, 255)
#: Keys of :meth:`Segmentation.areas`: the four classes, then the two whole chromosomes.
AREA_NAMES = (
    "background", "chromosome_1_only", "chromosome_2_only", "overlap", "chromosome_a",
    "chromosome_b",
)
#: File names that mark a ground truth for the image with the same stem, e.g. x_label.png.
TRUTH_SUFFIXES = ("_labels", "_label", "_mask", "_gt", "_truth", "_ground_truth")


class InputError(ValueError):
    """An input file cannot be used; the message names it and says why, for the user."""


@dataclass(frozen=True)
class Segmentation:
    """The result for one image, at the image's own size.

    Attributes:
        grey: (H, W) float32 grey values as read (original polarity and units).
        labels: (H, W) uint8 class map: 0 background, 1 first chromosome only, 2 second
            chromosome only, 3 overlap.
        light_background: the image had a light background and was inverted for the model.
        seconds: time from the grey image to the label map (preprocessing, network, crop).
        notes: what was changed on the way in (alpha dropped, background inverted).
    """

    grey: np.ndarray
    labels: np.ndarray
    light_background: bool
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape[0], self.labels.shape[1]

    def display(self) -> np.ndarray:
        """The image as a viewer shows it: (H, W) uint8, stretched from its min to its max."""
        return stretch_to_uint8(self.grey)

    def chromosome_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Chromosome A (classes 1 + 3) and chromosome B (classes 2 + 3) as boolean masks."""
        return chromosome_masks(self.labels)

    def areas(self) -> dict[str, int]:
        """Pixel counts of each class and of the two whole chromosomes."""
        counts = np.bincount(self.labels.ravel(), minlength=NUM_CLASSES).tolist()
        first, second = self.chromosome_masks()
        return dict(zip(AREA_NAMES, [*counts, int(first.sum()), int(second.sum())], strict=True))

    def overlay(self, opacity: float = 0.5) -> np.ndarray:
        """(H, W, 3) uint8: the image with each chromosome class tinted in the paper's colour."""
        return overlay(self.display(), self.labels, opacity)

    def cutouts(self) -> tuple[np.ndarray, np.ndarray]:
        """Chromosome A and B cut out of the image, the rest filled with the background."""
        fill = 255 if self.light_background else 0
        display = self.display()
        return tuple(np.where(mask, display, np.uint8(fill)) for mask in self.chromosome_masks())


def inference_ready(model: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of the model: eval mode, batch norms folded into their convolutions
    and channels-last memory layout. The layout makes the small NestedUNet about 1.5x faster
    on a 2-core CPU, the folding another 10-15 % (``benchmarks/bench_inference.py``)."""
    return fold_batch_norms(model).to(memory_format=torch.channels_last)


class Segmenter:
    """A loaded model and the steps around it; load once, call :meth:`segment` per image.

    Thread-safe: the model is only read (eval mode, inference mode), so concurrent requests
    of a web server may share one instance; only very large images wait for each other.
    """

    def __init__(self, model: torch.nn.Module, source: str = "<in memory>") -> None:
        self.model = inference_ready(model)
        self.source = source
        self.device = next(model.parameters()).device
        self._large_image_lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, source: str | Path | None = None) -> "Segmenter":
        """Load the model named by ``source``, else ``$AMFL_MODEL``, else the bundled one."""
        import amfl.hub

        source = resolve_model_source(source)
        return cls(amfl.hub.from_pretrained(source), source)

    def segment(self, image: np.ndarray | str | Path) -> Segmentation:
        """Segment an image file (path) or an already decoded pixel array."""
        if not isinstance(image, (str, Path)):
            return self.segment_grey(*to_grey(image))
        pixels = read_image(image)
        try:
            grey, notes = to_grey(pixels)
        except InputError as error:
            raise InputError(f"{Path(image).name}: {error}") from None
        return self.segment_grey(grey, notes)

    def segment_grey(self, grey: np.ndarray, notes: Sequence[str] = ()) -> Segmentation:
        """Segment a (H, W) grey image of either polarity."""
        started = time.perf_counter()
        foreground, light = foreground_image(grey)
        divisor = getattr(self.model, "input_divisor", SIZE_MULTIPLE)
        batch, padding = prepare_images(foreground[None], network_size(grey.shape, divisor, TRAINING_SIZE))
        one_at_a_time = self._large_image_lock if grey.size > LARGE_IMAGE_PIXELS else nullcontext()
        with one_at_a_time:
            probabilities = self.model.predict(torch.from_numpy(batch[:, None]).to(self.device))
            labels = padding.crop(probabilities.argmax(dim=1)[0]).to(torch.uint8).cpu().numpy()
        seconds = time.perf_counter() - started
        if light:
            notes = [*notes, "light background detected: inverted so chromosomes are bright"]
        return Segmentation(grey, np.ascontiguousarray(labels), light, seconds, tuple(notes))


def limit_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads (process-wide): ``threads``, else ``$AMFL_THREADS``, else 1."""
    if threads is None:
        setting = os.environ.get(THREADS_ENV) or str(DEFAULT_THREADS)
        if not setting.isdigit():
            raise ValueError(f"{THREADS_ENV} must be a whole number of threads, got {setting!r}")
        threads = int(setting)
    if threads < 1:
        raise ValueError(f"the number of CPU threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def resolve_model_source(source: str | Path | None = None) -> str:
    """The model to load: ``source``, else ``$AMFL_MODEL``, else the bundled folder.

    The bundled folder is checked here, because a missing local path would otherwise be
    taken for a Hub id and fail with a confusing download error.
    """
    if source is not None and str(source):
        return str(source)
    if os.environ.get(MODEL_ENV):
        return os.environ[MODEL_ENV]
    if not DEFAULT_MODEL_DIR.is_dir():
        raise FileNotFoundError(
            f"no model to load: the default model folder {DEFAULT_MODEL_DIR} does not exist "
            f"and {MODEL_ENV} is not set. Put a trained model there (config.json + "
            f"model.safetensors, as written by save_pretrained) or set {MODEL_ENV} to a "
            "model folder or a Hub id."
        )
    return str(DEFAULT_MODEL_DIR)


# --- Reading files --------------------------------------------------------------------------


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
    distances = np.linalg.norm(palette[used][:, None] - _COLOURS.astype(np.float32), axis=-1)
    classes = distances.argmin(axis=-1)
    is_colour_map = (distances.min(axis=-1) <= _COLOUR_TOLERANCE).all() and len(
        set(classes.tolist())
    ) == len(used)
    return not is_colour_map


# --- Grey level and polarity ----------------------------------------------------------------


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


def background_level(grey: np.ndarray) -> float:
    """The background grey level: the median of the image's outermost pixels.

    The border of a chromosome image is nearly all background, even when the chromosomes
    cover most of the middle.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border))


def foreground_image(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """(H, W) grey of either polarity -> chromosomes bright on a background of 0, as the
    training data (top-hat filtered fluorescence) is. Returns the image and whether the
    background was light and so inverted.

    A background nearer the brightest than the darkest value is light. The background level
    is subtracted (dark) or subtracted from (light), and negatives clipped to 0.
    """
    level = background_level(grey)
    light = level > (float(grey.min()) + float(grey.max())) / 2
    foreground = level - grey if light else grey - level
    return np.clip(foreground, 0, None), light


# --- Pictures -------------------------------------------------------------------------------


def stretch_to_uint8(grey: np.ndarray) -> np.ndarray:
    """(H, W) any range -> uint8 0..255 from the image's min to its max (flat image: 0)."""
    low, high = float(grey.min()), float(grey.max())
    if high <= low:
        return np.zeros(grey.shape, np.uint8)
    return np.round((grey - low) * (255.0 / (high - low))).astype(np.uint8)


def chromosome_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome A = classes 1 + 3 and chromosome B = classes 2 + 3 (both own the overlap)."""
    return (labels == FIRST) | (labels == OVERLAP), (labels == SECOND) | (labels == OVERLAP)


def overlay(display: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Tint the chromosome classes of a (H, W) uint8 image in the paper's colours.

    ``opacity`` 0 shows the image, 1 the plain colours; background pixels stay untouched.
    """
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must lie in 0..1, got {opacity}")
    rgb = np.repeat(display[..., None], 3, axis=-1).astype(np.float32)
    colours = _COLOURS[labels].astype(np.float32)
    tinted = (1 - opacity) * rgb + opacity * colours
    return np.where((labels > 0)[..., None], np.round(tinted), rgb).astype(np.uint8)


def difference_image(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The paper's Fig. 6 difference image, (H, W, 3) uint8.

    Pixels where the prediction differs from the truth take the colour of the predicted class
    (white where background was predicted, i.e. the chromosome was missed); correctly
    segmented chromosome pixels are dark grey and correct background black.
    """
    colours = _COLOURS.copy()
    colours[0] = _DIFFERENCE_MISSED
    image = np.where((truth > 0)[..., None], np.uint8(_DIFFERENCE_CORRECT), np.uint8(0))
    wrong = pred != truth
    image[wrong] = colours[pred[wrong]]
    return image


def save_label_png(labels: np.ndarray, path: Path | str) -> Path:
    """Write the label map as a palette PNG: pixel values are the classes 0-3 (machine
    readable, and accepted back as a ground truth), shown in the paper's colours."""
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(_COLOURS.ravel().tolist())
    image.save(path)
    return Path(path)


def save_png(pixels: np.ndarray, path: Path | str) -> Path:
    Image.fromarray(pixels).save(path)
    return Path(path)


# --- Ground truth and scores ----------------------------------------------------------------


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
    distances = np.linalg.norm(
        rgb[..., None, :].astype(np.float32) - _COLOURS.astype(np.float32), axis=-1
    )
    unknown = distances.min(axis=-1) > _COLOUR_TOLERANCE
    if unknown.mean() > _UNKNOWN_COLOUR_FRACTION:
        example = tuple(int(value) for value in rgb[unknown][0])
        raise InputError(
            f"{name}: {int(unknown.sum())} pixels match none of the class colours (black "
            f"background, red, green, blue overlap), e.g. RGB {example}; a ground truth is an "
            "index map with values 0-3 or uses these colours"
        )
    return distances.argmin(axis=-1).astype(np.uint8)


def score(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The paper's eight metrics for one image (percent; Hausdorff in pixels)."""
    return score_batch(pred, truth).means


def match_ground_truths(
    images: Sequence[str | Path], truths: Sequence[str | Path]
) -> tuple[dict[str, Path], list[Path]]:
    """Pair ground-truth files with images: a single image takes a single truth whatever its
    name; otherwise by stem (``x.png`` with ``x.png`` from another folder, ``x_label.png``,
    ``x_mask.tif``, ... see ``TRUTH_SUFFIXES``; a suffixed name wins over a bare one, and a
    file is never its own truth). Returns {image path: truth} and the truths that matched no
    image."""
    truths = [Path(truth) for truth in truths]
    if len(images) == 1 and len(truths) == 1:
        return {str(images[0]): truths[0]}, []
    by_stem = {}
    for truth in sorted(truths, key=lambda path: _truth_stem(path) != path.stem.lower()):
        by_stem[_truth_stem(truth)] = truth
    matched = {}
    for image in images:
        truth = by_stem.get(Path(image).stem.lower())
        if truth is not None and truth != Path(image):
            matched[str(image)] = truth
    used = set(matched.values())
    return matched, [truth for truth in truths if truth not in used]


def _truth_stem(path: Path) -> str:
    stem = path.stem.lower()
    for suffix in TRUTH_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


# --- Result tables --------------------------------------------------------------------------

#: Metric columns of the results table, named with their unit.
METRIC_COLUMNS = {
    name: f"{name}_{'px' if METRIC_UNITS[name] == 'px' else 'percent'}" for name in METRIC_NAMES
}
#: Columns of the per-image results table (the app's table and the CSV of app and CLI).
RESULT_COLUMNS = (
    "file",
    "width_px",
    "height_px",
    "light_background",
    *(f"area_{name}_px" for name in AREA_NAMES),
    "inference_ms",
    *METRIC_COLUMNS.values(),
)


def result_row(
    name: str, segmentation: Segmentation, scores: Mapping[str, float] | None = None
) -> dict[str, object]:
    """One row of ``RESULT_COLUMNS``; the metric cells are empty without a ground truth."""
    height, width = segmentation.shape
    row: dict[str, object] = {
        "file": name,
        "width_px": width,
        "height_px": height,
        "light_background": segmentation.light_background,
        **{f"area_{key}_px": value for key, value in segmentation.areas().items()},
        "inference_ms": round(segmentation.seconds * 1000, 1),
    }
    for metric, column in METRIC_COLUMNS.items():
        value = (scores or {}).get(metric)
        row[column] = "" if value is None or math.isnan(value) else round(float(value), 4)
    return row


def write_csv(rows: Iterable[Mapping[str, object]], path: Path | str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


# --- One image, end to end ------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """An image's segmentation with its optional ground truth and scores.

    ``truth_problem`` says why a given ground truth could not be used; the segmentation is
    still worth showing, so that is not an error.
    """

    name: str
    segmentation: Segmentation
    truth: np.ndarray | None = None
    scores: dict[str, float] | None = None
    truth_problem: str | None = None

    def row(self) -> dict[str, object]:
        return result_row(self.name, self.segmentation, self.scores)

    def difference(self) -> np.ndarray | None:
        """The Fig. 6 difference image, or None without a ground truth."""
        return None if self.truth is None else difference_image(self.segmentation.labels, self.truth)


def analyse(
    segmenter: Segmenter, image: str | Path, truth: str | Path | None = None, name: str | None = None
) -> Analysis:
    """Segment the image file ``image`` and score it against the file ``truth`` if given.

    Raises InputError when the image cannot be used; a bad ground truth is reported in
    ``truth_problem`` instead.
    """
    segmentation = segmenter.segment(image)
    name = name or Path(image).name
    if truth is None:
        return Analysis(name, segmentation)
    try:
        labels = read_ground_truth(truth, segmentation.shape)
    except InputError as error:
        return Analysis(name, segmentation, truth_problem=f"ground truth {error}")
    return Analysis(name, segmentation, labels, score(segmentation.labels, labels))


def output_stems(names: Sequence[str]) -> list[str]:
    """File-name stems for the outputs of ``names``, distinct even when two inputs share a
    stem (``a.png`` and ``a.tif`` -> ``a_png``, ``a_tif``; repeated names get a number)."""
    stems = [Path(name).stem for name in names]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    taken: set[str] = set()
    result = []
    for name, stem in zip(names, stems, strict=True):
        candidate = Path(name).name.replace(".", "_") if stem in clashing else stem
        unique, number = candidate, 1
        while unique in taken:
            number += 1
            unique = f"{candidate}_{number}"
        taken.add(unique)
        result.append(unique)
    return result


def save_results(analysis: Analysis, folder: Path | str, stem: str, opacity: float = 0.5) -> list[Path]:
    """Write ``<stem>_labels.png`` (palette label map), ``<stem>_overlay.png`` and, with a
    ground truth, ``<stem>_difference.png`` into ``folder``; returns the paths."""
    folder = Path(folder)
    paths = [
        save_label_png(analysis.segmentation.labels, folder / f"{stem}_labels.png"),
        save_png(analysis.segmentation.overlay(opacity), folder / f"{stem}_overlay.png"),
    ]
    difference = analysis.difference()
    if difference is not None:
        paths.append(save_png(difference, folder / f"{stem}_difference.png"))
    return paths
