"""A PNG grid of samples: the grey image beside its label map in the paper's colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from amfl.data.pairs import OverlapPairs
from amfl.pictures import colour_labels
from amfl.preprocessing import scale_to_unit

GAP = 4  # pixels between tiles


def sample_tile(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    grey = (scale_to_unit(image) * 255).astype(np.uint8)
    gap = np.full((image.shape[0], GAP // 2, 3), 64, np.uint8)
    return np.hstack([np.repeat(grey[..., None], 3, axis=-1), gap, colour_labels(labels)])


def render_grid(pairs: OverlapPairs, indices: np.ndarray, columns: int = 4, zoom: int = 2) -> Image.Image:
    """Tiles of the chosen samples, ``columns`` per row, enlarged ``zoom`` times."""
    if len(indices) == 0:
        raise ValueError("no samples to show")
    tiles = [sample_tile(pairs.images[i], pairs.labels[i]) for i in indices]
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    canvas = np.full((rows * (height + GAP), columns * (width + GAP), 3), 32, np.uint8)
    for position, tile in enumerate(tiles):
        top, left = (position // columns) * (height + GAP), (position % columns) * (width + GAP)
        canvas[top : top + height, left : left + width] = tile
    grid = Image.fromarray(canvas)
    return grid.resize((grid.width * zoom, grid.height * zoom), Image.Resampling.NEAREST)


def save_grid(pairs: OverlapPairs, path: Path | str, count: int = 16, seed: int = 0, columns: int = 4) -> Path:
    """Write a grid of ``count`` randomly chosen samples (seeded) to ``path``."""
    count = min(count, len(pairs))
    indices = np.sort(np.random.default_rng(seed).choice(len(pairs), size=count, replace=False))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_grid(pairs, indices, columns).save(path)
    return path
