"""Where two models differ on the Pommier validation pairs: class by class and pair by pair.

    python -m amfl.pommier_errors --model A --against B [--out FILE] [--pictures FILE.png]

A lever that helps the real pairs has often cost a few tenths of the Pommier validation Dice
and Hausdorff, and a sweep's three means do not say where. Both models run through the app's
path (:class:`amfl.segmentation.Segmenter`, each with its saved output steps) on the Pommier
validation samples that the protocol scores, in the network's 128 x 128 frame, as
``amfl.overlap_sweep`` and ``amfl.evaluate`` score them. Three tables follow:

- per class, each model's mean Dice and Hausdorff and the number of pairs in which the class is
  in the truth and absent from the prediction: such a pair's Hausdorff for that class is the
  frame's diagonal (179.6 px), so a handful of them moves the mean by tenths of a pixel;
- the pixel outcomes of :func:`amfl.real_errors.pixel_outcomes` for each model, with its mean
  Dice and the Dice had each pair's two names been swapped wherever that scores better (the
  truth names the smaller chromosome 1 and the app names by area, so a pair of near-equal
  chromosomes is named by a few pixels), and the Dice had each piece of a chromosome been given
  its truth's name (:func:`amfl.real_errors.name_pieces_by_truth`): what a model loses by
  splitting one chromosome between the two names;
- how the per-pair Dice difference spreads: pairs that gain or lose more than 1 and 10 points,
  and the share of the whole loss that the 1 % of pairs losing most carry;
- the mean per-pair difference of Dice, IoU and Hausdorff, each with a 95 % interval from
  resampling the pairs (:func:`amfl.case_bootstrap.case_bootstrap`, each pair its own case): how
  far a sweep's Pommier gain could move on other pairs (stop 56's output step gained validation
  Hausdorff and lost test Hausdorff, a handful of pairs each way; ``results/real-image/README.md``).
  The pairs recombine the same 12 chromosomes of one cell, so they are not independent and the
  interval is, if anything, too narrow.

``--pictures`` draws the pairs that lose most (image, truth, each model and its errors).
Test pairs are never read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amfl.case_bootstrap import case_bootstrap
from amfl.data.dataset import load_pairs
from amfl.data.pairs import CLASS_NAMES
from amfl.data.protocol import split_pairs
from amfl.data.sources import SourceError
from amfl.figures import plot_predictions
from amfl.markdown import records_table, show_and_save
from amfl.metrics import BatchScores, score_batch
from amfl.naming import each_map, swap_names
from amfl.overlap_sweep import network_labels
from amfl.real_errors import OUTCOMES, name_pieces_by_truth, pixel_outcomes
from amfl.segmentation import Segmenter, limit_threads

#: Per-pair Dice changes counted in the spread table, in points.
SPREAD_STEPS = (1.0, 10.0)
#: The per-image scores whose mean differences get an interval: the three the sweeps gate on.
GATED_SCORES = ("dice", "iou", "hausdorff")


def framed_labels(segmenter: Segmenter, images: np.ndarray, progress: bool = False) -> np.ndarray:
    """(N, 128, 128) labels of ``segmenter`` for each grey image, with its saved output steps,
    padded to the frame the network saw (the test's frame)."""
    return segmenter.preprocessor.pad_labels(network_labels(segmenter, images, progress))


def missed_classes(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(4,) pairs in which each class is in the truth and absent from the prediction."""
    classes = np.arange(len(CLASS_NAMES))[None, :, None, None]
    in_truth = (truth[:, None] == classes).any(axis=(2, 3))
    in_prediction = (predicted[:, None] == classes).any(axis=(2, 3))
    return (in_truth & ~in_prediction).sum(axis=0)


def class_rows(
    scores: BatchScores, against: BatchScores, missed: np.ndarray, missed_against: np.ndarray,
) -> list[dict[str, object]]:
    """One row per class: each model's mean Dice and Hausdorff, their differences, and the
    pairs in which each model leaves out a class of the truth."""
    rows = []
    for index, name in enumerate(CLASS_NAMES):
        dice, dice_against = (s.per_class["dice"][:, index].mean() for s in (scores, against))
        distance, distance_against = (s.per_class["hausdorff"][:, index].mean() for s in (scores, against))
        rows.append({
            "class": name, "Dice": float(dice), "Dice against": float(dice_against),
            "Dice difference": float(dice - dice_against),
            "Hausdorff": float(distance), "Hausdorff against": float(distance_against),
            "Hausdorff difference": float(distance - distance_against),
            "pairs missing it": int(missed[index]), "pairs missing it against": int(missed_against[index]),
        })
    return rows


def outcome_rows(labels: dict[str, np.ndarray], truths: np.ndarray) -> list[dict[str, object]]:
    """One row per model: each pixel outcome as a percentage of the truth's chromosome pixels
    (background painted too, as :mod:`amfl.real_errors` counts it), the mean Dice, the mean
    Dice with each pair named the better way round, the pairs that scores better swapped, and
    the mean Dice with each piece named by its truth."""
    rows = []
    for model, predicted in labels.items():
        counts = pixel_outcomes(predicted, truths)
        dice = score_batch(predicted, truths).per_image["dice"]
        swapped = score_batch(swap_names(predicted), truths).per_image["dice"]
        rows.append({
            "model": model, **{name: 100 * counts[name] / counts["chromosome"] for name in OUTCOMES},
            "Dice": float(dice.mean()), "Dice best naming": float(np.maximum(dice, swapped).mean()),
            "pairs better swapped": int((swapped > dice).sum()),
            "Dice best piece naming": score_batch(each_map(predicted, name_pieces_by_truth, truths), truths).means["dice"],
        })
    return rows


def spread_row(differences: np.ndarray, steps: Sequence[float] = SPREAD_STEPS) -> dict[str, object]:
    """How per-pair Dice differences (model minus against) spread: the mean, the pairs past
    each step either way, and the share of all lost points carried by the worst 1 % of pairs."""
    losses = np.sort(np.clip(-differences, 0, None))[::-1]
    worst = max(1, len(differences) // 100)
    row: dict[str, object] = {"pairs": len(differences), "mean difference": float(differences.mean())}
    for step in steps:
        row[f"gain > {step:g}"] = int((differences > step).sum())
        row[f"loss > {step:g}"] = int((differences < -step).sum())
    row["worst 1 % share of loss"] = float(100 * losses[:worst].sum() / losses.sum()) if losses.sum() else 0.0
    return row


def difference_rows(scores: BatchScores, against: BatchScores, draws: int = 2000, seed: int = 0) -> list[dict[str, object]]:
    """One row per score of :data:`GATED_SCORES`: the mean per-pair difference (``scores`` minus
    ``against``) with its 95 % interval over ``draws`` resamplings of the pairs."""
    rows = []
    for name in GATED_SCORES:
        differences = scores.per_image[name] - against.per_image[name]
        interval = case_bootstrap(differences, np.arange(len(differences)).astype(str), draws, seed)
        rows.append({"score": name, "difference": interval.mean, "95% low": interval.low, "95% high": interval.high})
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--against", required=True, help="the model to compare with (folder or Hub id)")
    parser.add_argument("--h5", type=Path, default=None, help="rebuilt Pommier dataset (default: the cache of amfl.data build)")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this markdown file")
    parser.add_argument("--pictures", type=Path, default=None, help="draw the pairs that lose most to this PNG")
    parser.add_argument("--worst", type=int, default=8, help="pairs drawn with --pictures (default 8)")
    parser.add_argument("--draws", type=int, default=2000, help="pair resamplings for the differences' intervals")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    args = parser.parse_args(argv)
    if args.worst < 1:
        parser.error(f"--worst must be 1 or more; got {args.worst}")
    if args.draws < 1:
        parser.error(f"--draws must be 1 or more; got {args.draws}")
    if args.pictures is not None and args.pictures.suffix.lower() != ".png":
        parser.error(f"--pictures writes a PNG; got {args.pictures}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    try:
        segmenters = [Segmenter.from_pretrained(name) for name in (args.model, args.against)]
        pommier = split_pairs(load_pairs(args.h5, progress=False)).validation_scored
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    frames = [segmenter.preprocessor.network_size(pommier.images.shape[-2:]) for segmenter in segmenters]
    if frames[0] != frames[1]:
        print(f"error: the two models score the pairs in different frames ({frames[0]} and {frames[1]}); "
              "compare models whose preprocessors pad to the same size", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty()
    ours, theirs = (framed_labels(segmenter, pommier.images, progress) for segmenter in segmenters)
    truths = segmenters[0].preprocessor.pad_labels(pommier.labels)
    scores, against = score_batch(ours, truths), score_batch(theirs, truths)
    differences = scores.per_image["dice"] - against.per_image["dice"]
    classes = class_rows(scores, against, missed_classes(ours, truths), missed_classes(theirs, truths))
    outcomes = outcome_rows({args.model: ours, args.against: theirs}, truths)
    table = (
        f"{args.model} against {args.against} on {len(truths)} Pommier validation pairs: mean per class\n\n"
        + records_table(classes, digits=2)
        + "\n\nPixel outcomes, % of the truth's chromosome pixels\n\n" + records_table(outcomes, digits=2)
        + "\n\nPer-pair Dice difference (model minus against)\n\n" + records_table([spread_row(differences)], digits=2)
        + "\n\nMean per-pair difference (model minus against), with its 95 % interval over resampled pairs\n\n"
        + records_table(difference_rows(scores, against, args.draws), digits=3)
    )
    show_and_save(table, args.out)
    if args.pictures is not None:
        chosen = np.argsort(differences, kind="stable")[:args.worst]
        framed_images = segmenters[0].preprocessor.pad_labels(pommier.images)
        drawn = {"model": ours[chosen], "against": theirs[chosen]}
        plot_predictions(framed_images[chosen], truths[chosen], drawn, args.pictures)
        print(f"saved {args.pictures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
