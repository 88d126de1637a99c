"""Time the synthetic pairs (target: 20,000 in under a minute on 2 cores) and compare them
with the real overlapping pairs of the training cases, by numbers and by eye.

    python benchmarks/bench_synthetic.py [--count 20000] [--seed 0] [--grid grid.png]

Both kinds are measured on the same 128 x 128 canvas: a synthetic pair as generated, a real
one as the window of its metaphase centred on the pair (neighbours included; the background
and edge statistics leave out their pixels and all within BACKGROUND_GAP_PX of them).
Printed: median and 10th/90th percentiles over pairs of the overlap size (px), the
chromosome areas (px, incl. the overlap), where the crossing lies along each chromosome
(0 centre, 1 end), the intensity ratio overlap / exclusive parts (mean DAPI), the saturated
share of the overlap, the edge profile (background-subtracted DAPI at -2..+4 px from the
pair's mask boundary over the pair's median), and the background level and noise (std, and
the fine-scale part: std of a pixel minus the mean of its 3 x 3 neighbourhood). The
statistics use the first STATS_SAMPLE synthetic pairs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from amfl.data.adir import list_metaphases
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.singles import BACKGROUND_GAP_PX, PATCH_SIZE, training_metaphases
from amfl.data.synthetic import OVERLAP, CAMERA_MAX, ingredients_from, synthesise
from amfl.pictures import colour_labels

#: Synthetic pairs measured for the statistics (the first of the generated ones).
STATS_SAMPLE = 2000
#: Distances from the mask boundary of the edge profile, pixels (<= 0 inside).
EDGE_DISTANCES = tuple(range(-2, 5))
#: Pairs of each kind in the grid (4 x 4).
GRID_PAIRS = 16
GRID_COLUMNS = 4
#: Percentiles printed beside the median.
LOW, HIGH = 10, 90


def real_windows(metaphases: list) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(DAPI window, pair labels 0-3, any expert label) on PATCH_SIZE canvases, one per
    overlapping pair of the given metaphases, centred on the pair (shifted inside the image)."""
    found = extract_real_pairs(metaphases, progress=False).select(kind="overlapping")
    planes = {metaphase.name: metaphase.read() for metaphase in metaphases}
    windows = []
    for pair in found:
        dapi, expert = planes[pair.cluster.metaphase]
        top, left, bottom, right = pair.cluster.box
        corner = [
            min(max((start + stop - PATCH_SIZE) // 2, 0), extent - PATCH_SIZE)
            for start, stop, extent in ((top, bottom, dapi.shape[0]), (left, right, dapi.shape[1]))
        ]
        window = slice(corner[0], corner[0] + PATCH_SIZE), slice(corner[1], corner[1] + PATCH_SIZE)
        placed = np.zeros(dapi.shape, np.uint8)
        placed[top:bottom, left:right] = pair.labels
        windows.append((dapi[window], placed[window], expert[window] > 0))
    return windows


def crossing_positions(labels: np.ndarray) -> tuple[float, float]:
    """Where the overlap lies along each chromosome, sorted: the distance of the overlap's
    centre from the chromosome's centre along its long axis, over its half-length (0 centre,
    1 end; half-length: the 98th percentile of the pixels' distances along the axis)."""
    overlap = np.argwhere(labels == OVERLAP).mean(axis=0)
    positions = []
    for value in (1, 2):
        pixels = np.argwhere(np.isin(labels, (value, OVERLAP))).astype(np.float64)
        centre = pixels.mean(axis=0)
        axis = np.linalg.eigh(np.cov((pixels - centre).T))[1][:, -1]
        half_length = np.percentile(np.abs((pixels - centre) @ axis), 98)
        positions.append(float(abs((overlap - centre) @ axis) / half_length))
    return min(positions), max(positions)


def pair_statistics(image: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> dict[str, float]:
    """The statistics of one pair: ``labels`` 0-3 of the pair, ``labelled`` every expert
    label of the window (the pair and any neighbour)."""
    grey = image.astype(np.float64)
    pair = labels > 0
    neighbours = labelled & ~pair
    far = ndimage.distance_transform_edt(~labelled) > BACKGROUND_GAP_PX
    level = float(np.median(grey[far]))
    fine = grey - ndimage.uniform_filter(grey, 3)
    overlap = labels == OVERLAP
    exclusive = pair & ~overlap
    signed = np.where(pair, 1 - ndimage.distance_transform_edt(pair), ndimage.distance_transform_edt(~pair))
    usable = ndimage.distance_transform_edt(~neighbours) > BACKGROUND_GAP_PX
    scale = float(np.median(grey[pair])) - level
    nearer, farther = crossing_positions(labels)
    statistics = {
        "overlap (px)": float(overlap.sum()),
        "smaller chromosome incl. overlap (px)": float(np.isin(labels, (1, OVERLAP)).sum()),
        "larger chromosome incl. overlap (px)": float(np.isin(labels, (2, OVERLAP)).sum()),
        "crossing along nearer-centred (0-1)": nearer,
        "crossing along other (0-1)": farther,
        "overlap / exclusive (mean DAPI)": float(grey[overlap].mean() / grey[exclusive].mean()),
        "saturated share of overlap": float((image[overlap] == CAMERA_MAX).mean()),
        "background level (grey)": level,
        "background std (grey)": float(grey[far].std()),
        "background fine noise (grey)": float(fine[far & ndimage.binary_erosion(far)].std()),
    }
    for distance in EDGE_DISTANCES:
        ring = (np.rint(signed) == distance) & usable
        statistics[f"edge {distance:+d} px / median"] = float((grey[ring].mean() - level) / scale)
    return statistics


def summary(rows: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Per statistic: (10th percentile, median, 90th percentile) over pairs."""
    return {name: tuple(np.percentile([row[name] for row in rows], [LOW, 50, HIGH])) for name in rows[0]}


def print_comparison(synthetic: dict, real: dict, counts: tuple[int, int]) -> None:
    """Side by side: median [p10, p90] of synthetic and real."""
    print(f"{'statistic':34s} {'synthetic (n=%d)' % counts[0]:>26s} {'real (n=%d)' % counts[1]:>26s}")
    for name in synthetic:
        cells = [f"{m:8.3g} [{lo:7.3g}, {hi:7.3g}]" for lo, m, hi in (synthetic[name], real[name])]
        print(f"{name:34s} {cells[0]:>26s} {cells[1]:>26s}")


def _tile(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Image (grey as RGB) beside its label colours, (128, 256, 3) uint8."""
    return np.hstack([np.repeat(image[..., None], 3, axis=-1), colour_labels(labels)])


def save_grid(
    path: Path, synthetic: list[tuple[np.ndarray, np.ndarray]], real: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """A PNG of GRID_PAIRS synthetic pairs (left block) beside GRID_PAIRS real ones (right)."""
    blocks = []
    for pairs in (synthetic, real):
        tiles = [_tile(*pair) for pair in pairs[:GRID_PAIRS]]
        tiles += [np.zeros_like(tiles[0])] * (GRID_PAIRS - len(tiles))
        rows = [np.hstack(tiles[start : start + GRID_COLUMNS]) for start in range(0, GRID_PAIRS, GRID_COLUMNS)]
        blocks.append(np.vstack(rows))
    gap = np.full((blocks[0].shape[0], 16, 3), 255, np.uint8)
    Image.fromarray(np.hstack([blocks[0], gap, blocks[1]])).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="synthetic pairs to generate (default: 20,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (default: 0)")
    parser.add_argument("--grid", type=Path, default=None, help="save a PNG of 16 synthetic beside 16 real pairs")
    args = parser.parse_args()
    metaphases = training_metaphases(list_metaphases())
    started = time.perf_counter()
    ingredients = ingredients_from(metaphases)
    prepared = time.perf_counter() - started
    print(f"cores: {os.cpu_count()}, training metaphases: {len(metaphases)}, singles: {len(ingredients.rotations)}, "
          f"background patches: {len(ingredients.patches.corners):,}")
    print(f"ingredients (read, cut, rotate {len(ingredients.rotations[0])} angles): {prepared:.1f} s")
    started = time.perf_counter()
    pairs = synthesise(args.count, ingredients, seed=args.seed)
    print(f"{args.count:,} pairs: {time.perf_counter() - started:.1f} s")
    real = real_windows(metaphases)
    sample = range(min(STATS_SAMPLE, len(pairs)))
    synthetic_rows = [pair_statistics(pairs.images[i], pairs.labels[i], pairs.labels[i] > 0) for i in sample]
    real_rows = [pair_statistics(*window) for window in real]
    print_comparison(summary(synthetic_rows), summary(real_rows), (len(synthetic_rows), len(real_rows)))
    if args.grid:
        save_grid(args.grid, [(pairs.images[i], pairs.labels[i]) for i in sample], [window[:2] for window in real])
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    main()
