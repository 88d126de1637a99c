"""From analyses to what the app's components show: pictures as PNG files, tables, the
legend and notes, grouped by component name so handlers return them by name, not position;
and what the server keeps of a batch to redraw it (:class:`Kept`, :class:`KeptResults`).

Text shown as Markdown or in a pop-up goes through :func:`page_text`: the page reads it as
HTML, while API clients get the same string, so only ``&``, ``<`` and ``>`` are escaped.
"""

from __future__ import annotations

import dataclasses
import html
import os
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from amfl.demo_store import TokenBatches
from amfl.metrics import METRIC_NAMES, METRIC_UNITS
from amfl.pictures import CLASS_COLOURS, colour_labels, difference_image, overlay
from amfl.reading import MAX_SIDE
from amfl.segmentation import Analysis, chromosome_masks

#: Download folders (and Gradio's cached copies) older than this are deleted, seconds.
OUTPUT_MAX_AGE_S = 3600
#: The download folders are checked for old ones at most this often, seconds.
SWEEP_INTERVAL_S = 60.0
_LAST_SWEEP: dict[Path, float] = {}
_SWEEP_LOCK = threading.Lock()
#: What a session's results may hold, packed bytes (:class:`PackedKept`): at least one image
#: of the largest size with its ground truth, were nothing compressible (3 bytes a pixel,
#: see :class:`Kept`), 48 MiB; later images of a bigger batch are listed in the table and
#: the downloads but cannot be shown again.
KEPT_SESSION_BYTES = 3 * MAX_SIDE * MAX_SIDE
#: What all sessions' results together may hold, bytes (192 MiB), the least recently used
#: batch dropped first: API calls, each a session of its own, cannot pile up memory.
KEPT_TOTAL_BYTES = 4 * KEPT_SESSION_BYTES
#: A batch's results are dropped this long after it was segmented, seconds (15 minutes).
KEPT_MAX_AGE_S = 900
#: Small images are shown enlarged (whole-pixel repeats) to at least this many pixels a side.
DISPLAY_MIN_SIDE = 384
_LEGEND = (
    ("chromosome 1 only", 1),
    ("chromosome 2 only", 2),
    ("overlap (both)", 3),
    ("background", 0),
)
_METRIC_LABELS = {
    "acc": "Acc", "dice": "Dice", "iou": "IoU", "recall": "Recall", "precision": "Precision",
    "fnr": "FNR", "fpr": "FPR", "hausdorff": "Hausdorff",
}
MEASUREMENT_HEADERS = ["Measurement", "Value"]
METRIC_HEADERS = ["Metric", "Value", "Unit"]


def page_text(text: str) -> str:
    """``text`` for a Markdown component or a pop-up: ``&``, ``<`` and ``>`` escaped, so the
    page shows a file name as typed instead of reading it as HTML, and quotes and
    apostrophes left as they are (harmless outside a tag), so API clients get them as typed
    rather than as ``&#x27;``. Gradio sanitises both kinds of text on the page anyway."""
    return html.escape(text, quote=False)


def popup_text(problems: Sequence[str]) -> str:
    """The one pop-up a request with ``problems`` shows: the first, and how many more the
    status lists."""
    more = f" (and {len(problems) - 1} more, listed on the page)" if len(problems) > 1 else ""
    return page_text(problems[0] + more)


def internal_error(name: str, error: Exception, folders: Sequence[Path]) -> str:
    """What the user is told of an unexpected failure on the file ``name``: its type and
    message, without the server's ``folders`` (the upload and download folders)."""
    detail = str(error)
    for folder in folders:
        if len(folder.parts) > 1:
            detail = detail.replace(f"{folder}{os.sep}", "")
    return f"{name}: internal error ({type(error).__name__}: {detail})"


@dataclass(frozen=True)
class Kept:
    """What the server keeps of one segmented image to redraw its views when another image is
    chosen or the opacity moves: the (H, W) uint8 display image, label map and ground truth
    (if any), 1 byte a pixel each, and the few numbers shown. Not the float32 grey image the
    model read (4 bytes a pixel) nor the :class:`Analysis` that holds it."""

    name: str
    display: np.ndarray
    labels: np.ndarray
    truth: np.ndarray | None
    areas: dict[str, int]
    light_background: bool
    seconds: float
    notes: tuple[str, ...] = ()
    scores: dict[str, float] | None = None
    truth_problem: str | None = None

    @classmethod
    def of(cls, analysis: Analysis) -> Kept:
        segmentation = analysis.segmentation
        truth = None if analysis.truth is None else analysis.truth.astype(np.uint8, copy=False)
        return cls(analysis.name, segmentation.display(), segmentation.labels.astype(np.uint8, copy=False),
                   truth, segmentation.areas(), segmentation.light_background, segmentation.seconds,
                   segmentation.notes, analysis.scores, analysis.truth_problem)

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in (self.display, self.labels, self.truth) if array is not None)

    def overlay(self, opacity: float) -> np.ndarray:
        return overlay(self.display, self.labels, opacity)

    def cutouts(self) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`amfl.segmentation.Segmentation.cutouts`."""
        fill = np.uint8(255 if self.light_background else 0)
        return tuple(np.where(mask, self.display, fill) for mask in chromosome_masks(self.labels))

    def difference(self) -> np.ndarray | None:
        return None if self.truth is None else difference_image(self.labels, self.truth)


#: The pixel fields of :class:`Kept`, each a uint8 array (``truth`` may be None).
PIXEL_FIELDS = ("display", "labels", "truth")


class PackedKept:
    """A :class:`Kept` as the store holds it: its pixel arrays compressed with zlib at level
    1 (each kept raw instead if that is not smaller), the rest as it is. Label maps are
    mostly runs of one class, so a 4096 x 4096 result of 32 MiB raw takes a few MiB; it is
    unpacked again only to be redrawn (about 0.1 s at that size)."""

    __slots__ = ("name", "nbytes", "_rest", "_pixels")

    def __init__(self, kept: Kept) -> None:
        self.name = kept.name
        self._pixels: dict[str, tuple[tuple[int, ...], bool, bytes] | None] = {}
        for field in PIXEL_FIELDS:
            array = getattr(kept, field)
            if array is None:
                self._pixels[field] = None
                continue
            raw = np.ascontiguousarray(array, dtype=np.uint8).tobytes()
            packed = zlib.compress(raw, 1)
            self._pixels[field] = (array.shape, True, packed) if len(packed) < len(raw) else (array.shape, False, raw)
        self._rest = dataclasses.replace(kept, display=None, labels=None, truth=None)
        self.nbytes = sum(len(data) for _, _, data in filter(None, self._pixels.values()))

    def unpack(self) -> Kept:
        """The :class:`Kept` again, with read-only arrays equal to the originals."""
        arrays = {field: None if packed is None else
                  np.frombuffer(zlib.decompress(packed[2]) if packed[1] else packed[2], np.uint8).reshape(packed[0])
                  for field, packed in self._pixels.items()}
        return dataclasses.replace(self._rest, **arrays)


class KeptResults(TokenBatches[PackedKept]):
    """The crop batches that sessions can redraw (:class:`amfl.demo_store.TokenBatches`),
    each result packed (:class:`PackedKept`) and bounded in packed bytes: a batch keeps its
    first results up to ``session_bytes``; all batches together hold at most
    ``total_bytes``."""

    def __init__(self, session_bytes: int = KEPT_SESSION_BYTES, total_bytes: int = KEPT_TOTAL_BYTES,
                 max_age_s: float = KEPT_MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        if session_bytes > total_bytes:
            raise ValueError(f"session_bytes {session_bytes} is over total_bytes {total_bytes}")
        super().__init__(total_bytes, max_age_s, clock)
        self.session_bytes, self.total_bytes = session_bytes, total_bytes

    def size(self, items: Sequence[PackedKept]) -> int:
        return sum(package.nbytes for package in items)

    def keep(self, results: Sequence[Kept], replacing: str | None = None) -> tuple[str, list[Kept]]:
        """Keep the first ``results`` that fit in ``session_bytes`` once packed, dropping
        the batch ``replacing`` (the session's previous one): (token, the results kept, as
        given); no token ("") when nothing was kept."""
        kept, packed, size = [], [], 0
        for result in results:
            package = PackedKept(result)
            if size + package.nbytes > self.session_bytes:
                break
            kept.append(result)
            packed.append(package)
            size += package.nbytes
        return self.store(packed, replacing), kept

    def names(self, token: str | None) -> list[str]:
        """The names of the results kept under ``token``; none once dropped."""
        return [package.name for package in self.batch(token)]

    def find(self, token: str | None, name: str | None) -> Kept | None:
        """The result ``name`` kept under ``token``, unpacked; None once dropped."""
        return next((package.unpack() for package in self.batch(token) if package.name == name), None)

    @property
    def nbytes(self) -> int:
        """Packed bytes of the pixel arrays held by all batches."""
        return self.total()


def legend_html() -> str:
    """Colour swatches of the paper's class colours, for beside the overlay."""
    items = []
    for name, label in _LEGEND:
        red, green, blue = CLASS_COLOURS[label]
        items.append(
            f'<span style="display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;'
            f'vertical-align:middle;border:1px solid #888;background:rgb({red},{green},{blue})">'
            f"</span>{label} {name}"
        )
    return '<div class="amfl-legend">' + "".join(items) + "</div>"


def measurements_table(result: Kept) -> pd.DataFrame:
    areas = result.areas
    height, width = result.labels.shape
    rows = [
        ("Size", f"{width} x {height} px"),
        ("Background", f"{areas['background']} px"),
        ("Chromosome 1 only", f"{areas['chromosome_1_only']} px"),
        ("Chromosome 2 only", f"{areas['chromosome_2_only']} px"),
        ("Overlap", f"{areas['overlap']} px"),
        ("Chromosome A (1 + overlap)", f"{areas['chromosome_a']} px"),
        ("Chromosome B (2 + overlap)", f"{areas['chromosome_b']} px"),
        ("Light background inverted", "yes" if result.light_background else "no"),
        ("Inference time", f"{result.seconds * 1000:.1f} ms"),
    ]
    return pd.DataFrame(rows, columns=MEASUREMENT_HEADERS)


def metrics_table(result: Kept) -> pd.DataFrame:
    """The eight metrics of the paper for one image; empty without a ground truth."""
    rows = [
        (_METRIC_LABELS[name], f"{result.scores[name]:.4f}", METRIC_UNITS[name])
        for name in METRIC_NAMES
    ] if result.scores else []
    return pd.DataFrame(rows, columns=METRIC_HEADERS)


def chromosome_gallery(result: Kept, folder: Path) -> list[tuple[str, str]]:
    first, second = chromosome_masks(result.labels)
    cut_first, cut_second = result.cutouts()
    pictures = [
        (first.astype(np.uint8) * 255, "A mask"),
        (cut_first, "A cut-out"),
        (second.astype(np.uint8) * 255, "B mask"),
        (cut_second, "B cut-out"),
    ]
    return [(display_png(picture, folder, f"chromosome_{number}"), caption)
            for number, (picture, caption) in enumerate(pictures)]


def enlarged(pixels: np.ndarray, min_side: int = DISPLAY_MIN_SIDE) -> np.ndarray:
    """Repeat pixels (nearest neighbour) so a small image is shown large enough to see its
    pixels; downloads keep the original size."""
    factor = max(1, min_side // max(pixels.shape[:2]))
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else pixels


def display_png(pixels: np.ndarray, folder: Path, name: str) -> str:
    """``pixels``, enlarged, as a PNG file in ``folder``: what an image component is given.

    Components get files rather than arrays because Gradio stores an array under a name
    derived from its content and writes it in place: two requests showing the same picture
    at once could fetch each other's half-written file. A file is copied into Gradio's
    cache under a temporary name and renamed, which is safe. Compression level 1: faster
    than the default for a few more bytes, on pictures that are only shown."""
    path = folder / f"{name}.png"
    Image.fromarray(enlarged(pixels)).save(path, compress_level=1)
    return str(path)


def image_notes(result: Kept) -> str:
    """What happened to this image on the way in, and why it has no metrics, if it has none."""
    notes = list(result.notes)
    if result.truth_problem:
        notes.append(f"no metrics: {result.truth_problem}")
    elif result.scores is None:
        notes.append("no ground truth given, so no metrics")
    return "\n".join(f"- {page_text(note)}" for note in notes)


@dataclass(frozen=True)
class ResultViews:
    """What the per-image components show, by component name (see :func:`build_demo`)."""

    overlay: str | None
    label_map: str | None
    chromosomes: list[tuple[str, str]]
    measurements: pd.DataFrame
    metrics: pd.DataFrame
    difference: str | None
    notes: str


@dataclass(frozen=True)
class BatchViews:
    """What the Segment button fills: the batch's components and the first image's views."""

    kept: str
    chooser: Any
    status: str
    table: pd.DataFrame
    downloads: list[str] | None
    result: ResultViews


def updates(views: ResultViews | BatchViews, components: Mapping[str, Any]) -> dict[Any, Any]:
    """{component: value} for Gradio, from a views object and its components by field name."""
    values = {}
    for field in dataclasses.fields(views):
        value = getattr(views, field.name)
        if isinstance(value, ResultViews):
            values.update(updates(value, components))
        else:
            values[components[field.name]] = value
    return values


def result_views(result: Kept | None, opacity: float, notes: str = "") -> ResultViews:
    """The per-image components' values for ``result`` (empty views with ``notes`` for None)."""
    if result is None:
        return ResultViews(None, None, [], pd.DataFrame(columns=MEASUREMENT_HEADERS),
                           pd.DataFrame(columns=METRIC_HEADERS), None, notes)
    folder = output_folder()
    difference = result.difference()
    return ResultViews(
        overlay=display_png(result.overlay(opacity), folder, "overlay"),
        label_map=display_png(colour_labels(result.labels), folder, "label_map"),
        chromosomes=chromosome_gallery(result, folder),
        measurements=measurements_table(result),
        metrics=metrics_table(result),
        difference=None if difference is None else display_png(difference, folder, "difference"),
        notes=image_notes(result),
    )


def output_folder(root: Path | None = None) -> Path:
    """A fresh folder for one request's downloads. Folders older than an hour are removed,
    by one request a minute at most (:data:`SWEEP_INTERVAL_S`), not listed on every request:
    the root holds hundreds of folders on a busy server."""
    root = root or Path(tempfile.gettempdir()) / "amfl-demo"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _SWEEP_LOCK:
        due = now - _LAST_SWEEP.get(root, 0.0) >= SWEEP_INTERVAL_S
        if due:
            _LAST_SWEEP[root] = now
    if due:
        for old in root.iterdir():
            try:
                if old.is_dir() and old.stat().st_mtime < now - OUTPUT_MAX_AGE_S:
                    shutil.rmtree(old, ignore_errors=True)
            except FileNotFoundError:  # removed meanwhile by another process
                pass
    return Path(tempfile.mkdtemp(dir=root))
