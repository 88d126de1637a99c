"""Shared fixtures. The rebuilt dataset is built once per test session from the source
images in ../shared/data (or $AMFL_DATA) into a temporary cache."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from amfl.data.dataset import BuildResult, build_dataset
from amfl.data.pairs import OverlapPairs
from amfl.data.sources import SOURCE_SHA256, default_source_dir


@pytest.fixture(scope="session")
def source_dir():
    folder = default_source_dir()
    missing = [name for name in SOURCE_SHA256 if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"source images {missing} not in {folder}; set AMFL_DATA")
    return folder


@pytest.fixture(scope="session")
def built(source_dir, tmp_path_factory) -> BuildResult:
    cache = tmp_path_factory.mktemp("cache") / "pairs.npz"
    return build_dataset(source_dir, cache, progress=False)


@pytest.fixture(scope="session")
def training_h5(built, tmp_path_factory) -> Path:
    """300 real samples of the rebuild in the layout of Hu et al.'s cleaned .h5, small
    enough for training and evaluation runs in tests (also from subprocesses)."""
    path = tmp_path_factory.mktemp("h5") / "pairs.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("13434_overlapping_chrom_pairs_LowRes", data=built.clean.subset(np.arange(300)).stacked())
    return path


def make_pairs(count: int = 12, seed: int = 0, shape: tuple[int, int] = (94, 93)) -> OverlapPairs:
    """Small synthetic pairs: two overlapping bars per sample, labels 1, 2 and 3."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, *shape), np.int16)
    labels = np.zeros((count, *shape), np.uint8)
    for index in range(count):
        top, left = rng.integers(10, 40, size=2)
        first = np.zeros(shape, bool)
        second = np.zeros(shape, bool)
        first[top : top + 40, left : left + 8] = True
        second[top + 15 : top + 23, left - 5 : left + 30] = True
        labels[index][first] = 1
        labels[index][second] = 2
        labels[index][first & second] = 3
        images[index] = first * rng.integers(80, 200) + second * rng.integers(80, 200)
    return OverlapPairs(images, labels)
