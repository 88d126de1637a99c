"""Load the overlapping-pairs dataset: from the compressed cache, by rebuilding it from the
source images, or from a user's original HDF5 file. This is the entry point training,
evaluation and the app use; they never call the rebuild steps themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from amfl.data.cache import cache_dir, load_arrays, save_arrays
from amfl.data.cleaning import CleaningReport, clean_pairs
from amfl.data.h5 import read_h5
from amfl.data.pairs import OverlapPairs
from amfl.data.rebuild import rebuild
from amfl.data.sources import load_sources

#: Bump when the recipe or the cleaning changes, so stale caches are not reused.
CACHE_VERSION = 1


@dataclass(frozen=True)
class BuildResult:
    raw: OverlapPairs
    clean: OverlapPairs
    cleaning: CleaningReport
    seconds: float
    path: Path


def default_cache_path() -> Path:
    return cache_dir() / f"pommier-overlapping-pairs-v{CACHE_VERSION}.npz"


def build_dataset(
    source_dir: Path | str | None = None, cache_path: Path | None = None, progress: bool = True
) -> BuildResult:
    """Rebuild from DAPI.tif + Cy3.tif, clean, and write the cache (always rebuilds)."""
    started = time.perf_counter()
    raw = rebuild(load_sources(source_dir), progress=progress)
    clean, report = clean_pairs(raw, progress=progress)
    path = save_arrays(
        cache_path or default_cache_path(),
        {"images": raw.images, "raw_labels": raw.labels, "clean_labels": clean.labels},
    )
    return BuildResult(raw, clean, report, time.perf_counter() - started, path)


def load_rebuilt_variants(
    source_dir: Path | str | None = None, cache_path: Path | None = None, progress: bool = True
) -> tuple[OverlapPairs, OverlapPairs]:
    """(raw, cleaned) rebuilt pairs from the cache, building and caching them if needed."""
    arrays = load_arrays(cache_path or default_cache_path(), ("images", "raw_labels", "clean_labels"))
    if arrays is None:
        result = build_dataset(source_dir, cache_path, progress)
        return result.raw, result.clean
    return (
        OverlapPairs(arrays["images"], arrays["raw_labels"]),
        OverlapPairs(arrays["images"], arrays["clean_labels"]),
    )


def load_rebuilt(
    cleaned: bool = True,
    source_dir: Path | str | None = None,
    cache_path: Path | None = None,
    progress: bool = True,
) -> OverlapPairs:
    """The rebuilt dataset (cleaned labels by default) from the cache, building it if needed.
    Reads only the arrays it returns, so a cached load stays within a second or two."""
    labels = "clean_labels" if cleaned else "raw_labels"
    arrays = load_arrays(cache_path or default_cache_path(), ("images", labels))
    if arrays is None:
        raw, clean = load_rebuilt_variants(source_dir, cache_path, progress)
        return clean if cleaned else raw
    return OverlapPairs(arrays["images"], arrays[labels])


def load_pairs(
    h5_path: Path | str | None = None,
    cleaned: bool = True,
    source_dir: Path | str | None = None,
    cache_path: Path | None = None,
    progress: bool = True,
) -> OverlapPairs:
    """The dataset to train or evaluate on: an original .h5 if given, else the rebuild.

    With ``cleaned`` a raw file (``dataset_1``) is cleaned here; an already cleaned file is
    used as it is. Without it, a cleaned file cannot be un-cleaned, so that is an error.
    """
    if h5_path is None:
        return load_rebuilt(cleaned, source_dir, cache_path, progress)
    pairs, already_clean = read_h5(h5_path, progress)
    if already_clean and not cleaned:
        raise ValueError(f"{h5_path}: holds cleaned labels; the raw labels are not in it")
    if cleaned and not already_clean:
        pairs, _ = clean_pairs(pairs, progress)
    return pairs
