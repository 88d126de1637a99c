"""Time the synthetic pairs (target: 20,000 in under a minute on 2 cores) and compare them
with the real pairs of the same kind of the training cases, by numbers and by eye.

    python benchmarks/bench_synthetic.py [--count 20000] [--seed 0] [--neighbours [N | LOW-HIGH]]
                                         [--kind overlapping | touching] [--grid grid.png]

Both kinds are measured on the same 128 x 128 canvas: a synthetic pair as generated (alone,
or with ``--neighbours``: that many further singles around it, default REAL_NEIGHBOURS), a
real one as the window of its metaphase centred on the pair (``amfl.data.real_windows``;
neighbours included; the background and edge statistics leave out their pixels and all
within BACKGROUND_GAP_PX of them). A synthetic neighbour has no label, so its light counts
as background, as an unlabelled object's would in a real window: that is the point. For the
statistics that leave the real neighbours out, a synthetic neighbour's chromosome is taken
as the pixels farther than HALO_PX from the pair and NEIGHBOUR_LEVEL_GREY above the window's
border median. The "away from pair" rows measure what the network sees around the pair on
both kinds alike (every pixel farther than BACKGROUND_GAP_PX from the pair, neighbours
included): the border median the preprocessing subtracts, the median and std there, and the
share of it NEIGHBOUR_LEVEL_GREY above the border median (neighbours' light).
Also printed: the labelled components other than the pair that intersect each real window
(what REAL_NEIGHBOURS is drawn from).
Printed: median and 10th/90th percentiles over pairs of the overlap size (px), the
chromosome areas (px, incl. the overlap), where the crossing lies along each chromosome
(0 centre, 1 end), the intensity ratio overlap / exclusive parts (mean DAPI), the saturated
share of the overlap (with ``--kind touching`` instead: the contact, pixels of either
chromosome that share an edge with the other; the angle between the long axes; the
intensity ratio contact / the rest of the pair), the edge profile (background-subtracted
DAPI at -2..+4 px from the pair's mask boundary over the pair's median), and the background
level and noise (std, and the fine-scale part: std of a pixel minus the mean of its 3 x 3
neighbourhood). The statistics use the first STATS_SAMPLE synthetic pairs.
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
from amfl.connectivity import FOUR_CONNECTED
from amfl.data.real_pairs import PAIR_KINDS, extract_real_pairs
from amfl.data.real_windows import window_box, window_labels
from amfl.data.singles import BACKGROUND_GAP_PX, HALO_PX, training_metaphases
from amfl.data.synthetic import OVERLAP, CAMERA_MAX, REAL_NEIGHBOURS, contact_pixels, crossing_angle, ingredients_from, orientation, synthesise
from amfl.pictures import colour_labels
from amfl.preprocessing import border_median

#: Synthetic pairs measured for the statistics (the first of the generated ones).
STATS_SAMPLE = 2000
#: Distances from the mask boundary of the edge profile, pixels (<= 0 inside).
EDGE_DISTANCES = tuple(range(-2, 5))
#: Pairs of each kind in the grid (4 x 4).
GRID_PAIRS = 16
GRID_COLUMNS = 4
#: Percentiles printed beside the median.
LOW, HIGH = 10, 90
#: Grey levels above the border median taken as a neighbour's light: about a halo's 2 px
#: from its mask (``amfl.data.singles``: 0.19 of a median signal of 108), inside the
#: BACKGROUND_GAP_PX the statistics keep from it.
NEIGHBOUR_LEVEL_GREY = 20


def real_canvases(metaphases: list, kind: str) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], list[int]]:
    """(DAPI window, pair labels 0-3, any expert label) per pair of ``kind`` of the given
    metaphases (:func:`amfl.data.real_windows.window_box`), and per window the number of
    labelled components (4-connected, in the whole metaphase) other than the pair in it."""
    found = extract_real_pairs(metaphases, progress=False).select(kind=kind)
    planes = {metaphase.name: metaphase.read() for metaphase in metaphases}
    components = {name: ndimage.label(expert > 0, FOUR_CONNECTED)[0] for name, (_, expert) in planes.items()}
    windows, neighbours = [], []
    for pair in found:
        dapi, expert = planes[pair.cluster.metaphase]
        window = window_box(pair, dapi.shape)
        labels = window_labels(pair, window)
        windows.append((dapi[window], labels, expert[window] > 0))
        inside = components[pair.cluster.metaphase][window]
        neighbours.append(len(np.setdiff1d(np.unique(inside), [0, *np.unique(inside[labels > 0])])))
    return windows, neighbours


def neighbour_range(text: str) -> int | tuple[int, int]:
    """``--neighbours`` value: a count ``N`` or an inclusive range ``LOW-HIGH``."""
    low, _, high = text.partition("-")
    return (int(low), int(high)) if high else int(low)


def synthetic_labelled(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pair's pixels and, farther than HALO_PX from it, those NEIGHBOUR_LEVEL_GREY above
    the border median: a synthetic canvas's stand-in for "any expert label"."""
    away = ndimage.distance_transform_edt(labels == 0) > HALO_PX
    return (labels > 0) | (away & (image > border_median(image.astype(np.float64)) + NEIGHBOUR_LEVEL_GREY))


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
    if overlap.any():
        nearer, farther = crossing_positions(labels)
        meeting = {
            "overlap (px)": float(overlap.sum()),
            "crossing along nearer-centred (0-1)": nearer,
            "crossing along other (0-1)": farther,
            "overlap / exclusive (mean DAPI)": float(grey[overlap].mean() / grey[exclusive].mean()),
            "saturated share of overlap": float((image[overlap] == CAMERA_MAX).mean()),
        }
    else:
        meeting = contact_statistics(grey, labels)
    statistics = {
        "smaller chromosome incl. overlap (px)": float(np.isin(labels, (1, OVERLAP)).sum()),
        "larger chromosome incl. overlap (px)": float(np.isin(labels, (2, OVERLAP)).sum()),
        **meeting,
        "background level (grey)": level,
        "background std (grey)": float(grey[far].std()),
        "background fine noise (grey)": float(fine[far & ndimage.binary_erosion(far)].std()),
    }
    for distance in EDGE_DISTANCES:
        ring = (np.rint(signed) == distance) & usable
        edge = (grey[ring].mean() - level) / scale if ring.any() else np.nan
        statistics[f"edge {distance:+d} px / median"] = float(edge)
    return statistics | surround_statistics(grey, pair)


def contact_statistics(grey: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Where a touching pair (labels 0-2) meets: the contact, the angle between the long
    axes, and how bright the contact is against the rest of the pair."""
    smaller, larger = labels == 1, labels == 2
    contact = contact_pixels(labels)
    return {
        "contact (px)": float(contact.sum()),
        "angle between axes (degrees)": crossing_angle(orientation(smaller), orientation(larger)),
        "contact / rest of pair (mean DAPI)": float(grey[contact].mean() / grey[(labels > 0) & ~contact].mean()),
    }


def surround_statistics(grey: np.ndarray, pair: np.ndarray) -> dict[str, float]:
    """What the network sees around the pair, neighbours included, on both kinds alike."""
    border = float(border_median(grey))
    away = grey[ndimage.distance_transform_edt(~pair) > BACKGROUND_GAP_PX]
    return {
        "border median (grey)": border,
        "away from pair: median (grey)": float(np.median(away)),
        "away from pair: std (grey)": float(away.std()),
        "away from pair: bright share": float((away > border + NEIGHBOUR_LEVEL_GREY).mean()),
    }


def summary(rows: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Per statistic: (10th percentile, median, 90th percentile) over pairs; a pair whose
    neighbours leave no pixel to measure (an edge ring next to them: nan) is left out."""
    return {name: tuple(np.nanpercentile([row[name] for row in rows], [LOW, 50, HIGH])) for name in rows[0]}


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
    parser.add_argument(
        "--neighbours", type=neighbour_range, nargs="?", const=REAL_NEIGHBOURS, default=0,
        help="further singles around each synthetic pair: N or LOW-HIGH (default 0; the flag alone: "
             f"{REAL_NEIGHBOURS[0]}-{REAL_NEIGHBOURS[1]}, as the real windows)",
    )
    parser.add_argument("--kind", choices=PAIR_KINDS, default="overlapping", help="pairs to make and compare (default: overlapping)")
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
    pairs = synthesise(args.count, ingredients, seed=args.seed, neighbours=args.neighbours, kind=args.kind)
    print(f"{args.count:,} {args.kind} pairs, neighbours {args.neighbours}: {time.perf_counter() - started:.1f} s")
    real, neighbours = real_canvases(metaphases, args.kind)
    low, median, high = np.percentile(neighbours, [LOW, 50, HIGH])
    print(f"real windows: labelled components besides the pair: median {median:g} [{low:g}, {high:g}], "
          f"mean {np.mean(neighbours):.2f}")
    sample = range(min(STATS_SAMPLE, len(pairs)))
    synthetic_rows = [
        pair_statistics(pairs.images[i], pairs.labels[i], synthetic_labelled(pairs.images[i], pairs.labels[i]))
        for i in sample
    ]
    real_rows = [pair_statistics(*window) for window in real]
    print_comparison(summary(synthetic_rows), summary(real_rows), (len(synthetic_rows), len(real_rows)))
    if args.grid:
        save_grid(args.grid, [(pairs.images[i], pairs.labels[i]) for i in sample], [window[:2] for window in real])
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    main()
