"""From analyses to what the app's components show: pictures as PNG files, tables, the
legend and notes, grouped by component name so handlers return them by name, not position.
"""

from __future__ import annotations

import dataclasses
import html
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from amfl.metrics import METRIC_NAMES, METRIC_UNITS
from amfl.pictures import CLASS_COLOURS, colour_labels
from amfl.segmentation import Analysis

#: Download folders (and Gradio's cached copies) older than this are deleted, seconds.
OUTPUT_MAX_AGE_S = 3600
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


def measurements_table(analysis: Analysis) -> pd.DataFrame:
    segmentation = analysis.segmentation
    areas = segmentation.areas()
    height, width = segmentation.shape
    rows = [
        ("Size", f"{width} x {height} px"),
        ("Background", f"{areas['background']} px"),
        ("Chromosome 1 only", f"{areas['chromosome_1_only']} px"),
        ("Chromosome 2 only", f"{areas['chromosome_2_only']} px"),
        ("Overlap", f"{areas['overlap']} px"),
        ("Chromosome A (1 + overlap)", f"{areas['chromosome_a']} px"),
        ("Chromosome B (2 + overlap)", f"{areas['chromosome_b']} px"),
        ("Light background inverted", "yes" if segmentation.light_background else "no"),
        ("Inference time", f"{segmentation.seconds * 1000:.1f} ms"),
    ]
    return pd.DataFrame(rows, columns=MEASUREMENT_HEADERS)


def metrics_table(analysis: Analysis) -> pd.DataFrame:
    """The eight metrics of the paper for one image; empty without a ground truth."""
    rows = [
        (_METRIC_LABELS[name], f"{analysis.scores[name]:.4f}", METRIC_UNITS[name])
        for name in METRIC_NAMES
    ] if analysis.scores else []
    return pd.DataFrame(rows, columns=METRIC_HEADERS)


def chromosome_gallery(analysis: Analysis, folder: Path) -> list[tuple[str, str]]:
    first, second = analysis.segmentation.chromosome_masks()
    cut_first, cut_second = analysis.segmentation.cutouts()
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
    cache under a temporary name and renamed, which is safe."""
    path = folder / f"{name}.png"
    Image.fromarray(enlarged(pixels)).save(path)
    return str(path)


def image_notes(analysis: Analysis) -> str:
    """What happened to this image on the way in, and why it has no metrics, if it has none."""
    notes = list(analysis.segmentation.notes)
    if analysis.truth_problem:
        notes.append(f"no metrics: {analysis.truth_problem}")
    elif analysis.scores is None:
        notes.append("no ground truth given, so no metrics")
    return "\n".join(f"- {html.escape(note)}" for note in notes)


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

    analyses: list[Analysis]
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


def result_views(analysis: Analysis | None, opacity: float) -> ResultViews:
    """The per-image components' values for ``analysis`` (empty views for None)."""
    if analysis is None:
        return ResultViews(None, None, [], pd.DataFrame(columns=MEASUREMENT_HEADERS),
                           pd.DataFrame(columns=METRIC_HEADERS), None, "")
    folder = output_folder()
    difference = analysis.difference()
    return ResultViews(
        overlay=display_png(analysis.segmentation.overlay(opacity), folder, "overlay"),
        label_map=display_png(colour_labels(analysis.segmentation.labels), folder, "label_map"),
        chromosomes=chromosome_gallery(analysis, folder),
        measurements=measurements_table(analysis),
        metrics=metrics_table(analysis),
        difference=None if difference is None else display_png(difference, folder, "difference"),
        notes=image_notes(analysis),
    )



def output_folder(root: Path | None = None) -> Path:
    """A fresh folder for one request's downloads; folders older than an hour are removed."""
    root = root or Path(tempfile.gettempdir()) / "amfl-demo"
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in root.iterdir():
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))
