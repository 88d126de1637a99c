"""Shared fixtures. The rebuilt dataset is built once per test session from the source
images in ../shared/data (or $AMFL_DATA) into a temporary cache."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from amfl.data.dataset import BuildResult, build_dataset
from amfl.data.pairs import OverlapPairs
from amfl.data.adir import CHECKSUM_FILE, default_adir_dir
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


def skip_without_adir() -> None:
    """Skip the calling test when the ADIR metaphases (``../shared`` or ``$AMFL_ADIR``) are absent."""
    if not (default_adir_dir() / CHECKSUM_FILE).is_file():
        pytest.skip(f"the ADIR metaphases are not in {default_adir_dir()}; set AMFL_ADIR")


# --- The bundled model and the committed examples -------------------------------------------

REPO = Path(__file__).resolve().parents[1]
#: The trained model the app ships with (amfl-small at base width 16, test Dice 95.06 on its card).
BUNDLED_MODEL = REPO / "space" / "model"
#: Eight crops of the rebuilt test split with their ground truths (space/examples/LICENCE.md).
EXAMPLES_DIR = REPO / "space" / "examples"
EXAMPLE_COUNT = 8


def example_paths(number: int) -> tuple[Path, Path]:
    """(image, ground truth) files of committed example ``number`` (1-8)."""
    return EXAMPLES_DIR / f"example_{number}.png", EXAMPLES_DIR / f"example_{number}_label.png"


def example_arrays(number: int) -> tuple[np.ndarray, np.ndarray]:
    """Committed example ``number`` as stored: (94, 93) uint16 grey and uint8 labels 0-3,
    read with Pillow alone (not with the amfl reader the tests check)."""
    from PIL import Image

    image_path, label_path = example_paths(number)
    with Image.open(image_path) as image, Image.open(label_path) as labels:
        return np.asarray(image).astype(np.uint16), np.asarray(labels).astype(np.uint8)


@pytest.fixture(scope="module")
def bundled_segmenter():
    """``Segmenter.from_pretrained`` of the bundled trained model, on one CPU thread (as the
    app); torch's thread count is restored after the module."""
    import torch

    from amfl.segmentation import Segmenter, limit_threads

    previous = torch.get_num_threads()
    limit_threads(1)
    yield Segmenter.from_pretrained(BUNDLED_MODEL)
    torch.set_num_threads(previous)


@pytest.fixture
def restore_threads():
    """Put torch's CPU thread count back after a test that sets it (the CLI and app do)."""
    import torch

    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def parameter_count(module) -> int:
    """Number of parameters of a torch module (Table IV counts)."""
    return sum(parameter.numel() for parameter in module.parameters())
