"""Time amfl.metrics.score_batch on a test set the size of the paper's (2,432 pairs, 128 x 128).

The pairs are synthetic but shaped like the task: two crossing chromosome-like bands (labels
1, 2, overlap 3) on background, and a prediction that differs from the truth on part of
the boundary pixels, with a spurious blob in a few images (far errors dominate Hausdorff).

    python benchmarks/bench_metrics.py            # exits 1 if over the 10 s budget
"""

import argparse
import sys
import time

import numpy as np

from amfl.metrics import score_batch

PAPER_TEST_IMAGES = 2432
BUDGET_SECONDS = 10.0


def crossing_pairs(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(count, size, size) uint8 truth maps of two crossing bands 3-5 px thick, 30-70 px long."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    centres = size / 2 + rng.uniform(-15, 15, size=(count, 2))
    first_angle = rng.uniform(0, np.pi, size=count)
    angles = np.stack([first_angle, first_angle + rng.uniform(np.pi / 6, 5 * np.pi / 6, count)], 1)
    labels = np.zeros((count, size, size), dtype=np.uint8)
    for band, label in enumerate((1, 2)):
        direction = np.stack([np.sin(angles[:, band]), np.cos(angles[:, band])], 1)
        half_length = rng.uniform(15, 35, size=(count, 1, 1))
        radius = rng.uniform(3, 5, size=(count, 1, 1))
        along = (rows - centres[:, :1, None]) * direction[:, :1, None] + (
            columns - centres[:, 1:, None]
        ) * direction[:, 1:, None]
        across = (rows - centres[:, :1, None]) * direction[:, 1:, None] - (
            columns - centres[:, 1:, None]
        ) * direction[:, :1, None]
        beyond_end = np.maximum(np.abs(along) - half_length, 0)
        inside = np.hypot(beyond_end, across) <= radius
        labels[inside] |= label
    return labels


def perturbed_predictions(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copy ``truth``, give 20 % of boundary pixels a neighbour's label, add blobs to 5 %."""
    padded = np.pad(truth, ((0, 0), (1, 1), (1, 1)), mode="edge")
    neighbours = np.stack([
        padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]
    ])
    boundary = (neighbours != truth).any(axis=0)
    flip = boundary & (rng.random(truth.shape) < 0.2)
    chosen = rng.integers(0, 4, size=truth.shape)
    prediction = np.where(flip, np.take_along_axis(neighbours, chosen[None], 0)[0], truth)
    for image in np.flatnonzero(rng.random(len(truth)) < 0.05):
        row, column = rng.integers(4, truth.shape[1] - 8, size=2)
        prediction[image, row : row + 4, column : column + 4] = rng.integers(1, 4)
    return prediction.astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=PAPER_TEST_IMAGES, help="pairs to score")
    parser.add_argument("--size", type=int, default=128, help="image height and width, pixels")
    parser.add_argument("--seed", type=int, default=123, help="random seed of the synthetic pairs")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    truth = crossing_pairs(args.images, args.size, rng)
    prediction = perturbed_predictions(truth, rng)

    start = time.perf_counter()
    scores = score_batch(prediction, truth)
    seconds = time.perf_counter() - start

    means = ", ".join(f"{name} {value:.4f}" for name, value in scores.means.items())
    print(f"scored {args.images} pairs of {args.size}x{args.size}: {means}")
    print(f"score_batch: {seconds:.2f} s (budget {BUDGET_SECONDS:.0f} s)")
    return 0 if seconds <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
