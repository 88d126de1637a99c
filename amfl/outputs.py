"""What a batch of segmented images leaves on disk: ground truths matched to images by
name, output file names, label maps and pictures per image, and one CSV of results.
Shared by the command line (``amfl.predict``) and the app's downloads (``amfl.demo``).

Every file is written through :func:`atomic_write`: to a temporary name in its folder, then
renamed into place, so a full disk or a killed process never leaves a partial file under
the final name."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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
#: What :func:`save_results` appends to an output stem.
OUTPUT_SUFFIXES = ("_labels.png", "_overlay.png", "_difference.png")
#: Longest file name of the common file systems (ext4, XFS, APFS, NTFS), bytes.
MAX_NAME_BYTES = 255
#: Longest output stem: room is left for the longest suffix.
MAX_STEM_BYTES = MAX_NAME_BYTES - max(len(suffix.encode()) for suffix in OUTPUT_SUFFIXES)
#: Temporary files of :func:`atomic_write` start with this (hidden, and short whatever the
#: final name, so that a name near the length limit still gets a temporary).
TEMPORARY_PREFIX = ".amfl-partial-"
#: Temporaries not modified for this long are a killed run's (:func:`remove_stale_temporaries`).
STALE_TEMPORARY_S = 60.0


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


def output_stems(names: Sequence[str], suffixes: Sequence[str] = OUTPUT_SUFFIXES) -> list[str]:
    """File-name stems for the outputs of ``names``, distinct even when two inputs share a
    stem (``a.png`` and ``a.tif`` -> ``a_png``, ``a_tif``; repeated names get a number), also
    on file systems that ignore case, and short enough for the longest of ``suffixes`` within
    ``MAX_NAME_BYTES``: a longer stem is cut and ends in ``~`` and a hash of the whole name."""
    limit = MAX_NAME_BYTES - max(len(suffix.encode()) for suffix in suffixes)
    stems = [Path(name).stem for name in names]
    counts = Counter(stem.casefold() for stem in stems)
    taken: set[str] = set()
    result = []
    for name, stem in zip(names, stems, strict=True):
        candidate = Path(name).name.replace(".", "_") if counts[stem.casefold()] > 1 else stem
        unique, number = _fit_stem(candidate, name, limit), 1
        while unique.casefold() in taken:
            number += 1
            unique = _fit_stem(candidate, name, limit, f"_{number}")
        taken.add(unique.casefold())
        result.append(unique)
    return result


def _fit_stem(stem: str, name: str, limit: int, tail: str = "") -> str:
    """``stem + tail``, or when longer than ``limit`` bytes in UTF-8, the start of ``stem``
    with ``~`` and 8 hex digits of a hash of ``name`` (names sharing a long prefix differ)."""
    if len((stem + tail).encode()) <= limit:
        return stem + tail
    mark = "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    room = limit - len((mark + tail).encode())
    cut = stem.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return cut + mark + tail


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


def atomic_write(path: Path | str, write: Callable[[Path], object]) -> Path:
    """Write ``path`` all or nothing: ``write(temporary)`` fills a temporary file of the same
    folder and type (``.amfl-partial-<random><suffix>``), which is synced and renamed over
    ``path``. On any failure the temporary is removed, a file already at ``path`` is left as
    it was, and an OSError names ``path`` rather than the temporary."""
    path = Path(path)
    temporary = _new_temporary(path)
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    return path


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove the temporaries of :func:`atomic_write` that a killed process left in
    ``folder``: those not modified for ``older_than_s`` (a live writer's are newer).
    Returns what was removed."""
    cutoff = time.time() - older_than_s
    removed = []
    for path in folder.glob(f"{TEMPORARY_PREFIX}*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # removed meanwhile
            continue
    return removed


def _new_temporary(path: Path) -> Path:
    """An empty new file beside ``path``, created with the usual permissions (umask)."""
    while True:
        temporary = path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}{path.suffix[:16]}")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary
        except FileExistsError:
            continue
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from error


def write_csv(
    rows: Iterable[Mapping[str, object]], path: Path | str, columns: Sequence[str] = RESULT_COLUMNS
) -> Path:
    """The rows as a CSV with a header of ``columns`` (cells missing from a row are empty),
    written atomically."""
    rows = list(rows)

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), restval="")
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)


def save_results(analysis: Analysis, folder: Path | str, stem: str, opacity: float = 0.5) -> list[Path]:
    """Write ``<stem>_labels.png`` (palette label map), ``<stem>_overlay.png`` and, with a
    ground truth, ``<stem>_difference.png`` into ``folder``, each atomically; returns the
    paths. An OSError names the file that could not be written."""
    folder = Path(folder)
    labels, overlay = analysis.segmentation.labels, analysis.segmentation.overlay(opacity)
    paths = [
        atomic_write(folder / f"{stem}_labels.png", lambda temporary: save_label_png(labels, temporary)),
        atomic_write(folder / f"{stem}_overlay.png", lambda temporary: save_png(overlay, temporary)),
    ]
    difference = analysis.difference()
    if difference is not None:
        paths.append(
            atomic_write(folder / f"{stem}_difference.png", lambda temporary: save_png(difference, temporary))
        )
    return paths


def output_paths(folder: Path | str, stem: str, suffixes: Sequence[str] = OUTPUT_SUFFIXES) -> list[Path]:
    """Every file :func:`save_results` (or a writer of ``suffixes``) may write for ``stem``."""
    return [Path(folder) / f"{stem}{suffix}" for suffix in suffixes]
