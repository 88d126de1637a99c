"""What a batch of segmented images leaves on disk: ground truths matched to images by
name, output file names, label maps and pictures per image, and one CSV of results.
Shared by the command line (``amfl.predict``) and the app's downloads (``amfl.demo``)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from amfl.metrics import METRIC_NAMES, METRIC_UNITS
from amfl.pictures import save_label_png, save_png
from amfl.segmentation import AREA_NAMES, Analysis

#: File names that mark a ground truth for the image with the same stem, e.g. x_label.png.
TRUTH_SUFFIXES = ("_labels", "_label", "_mask", "_gt", "_ground_truth", "_truth")
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
    for suffix in sorted(TRUTH_SUFFIXES, key=len, reverse=True):  # _ground_truth before _truth
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


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


def result_row(analysis: Analysis) -> dict[str, object]:
    """One row of ``RESULT_COLUMNS``; the metric cells are empty without a ground truth."""
    segmentation = analysis.segmentation
    height, width = segmentation.shape
    row: dict[str, object] = {
        "file": analysis.name,
        "width_px": width,
        "height_px": height,
        "light_background": segmentation.light_background,
        **{f"area_{key}_px": value for key, value in segmentation.areas().items()},
        "inference_ms": round(segmentation.seconds * 1000, 1),
    }
    for metric, column in METRIC_COLUMNS.items():
        value = (analysis.scores or {}).get(metric)
        row[column] = "" if value is None or math.isnan(value) else round(float(value), 4)
    return row


def write_csv(rows: Iterable[Mapping[str, object]], path: Path | str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


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
