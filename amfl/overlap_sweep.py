"""Choose a model's stray-overlap settings (:mod:`amfl.small_overlaps`) on validation pairs.

The network runs once per image, on the Pommier validation samples that the protocol would
score (those with overlap, :attr:`Splits.validation_scored`) and on the real validation pairs,
through the app's path (:class:`amfl.segmentation.Segmenter`); each combination of the
settings to try (``min_overlap_pixels`` from ``--sizes``, ``min_overlap_border_share`` from
``--shares``, ``min_overlap_brightness`` from ``--brightnesses``, ``min_part_share`` of
:mod:`amfl.pair_parts` from ``--part_shares``, ``cut_piece_share`` of :mod:`amfl.piece_names`
from ``--piece_shares``, ``crossing_arms`` of :mod:`amfl.crossing_arms` from ``--crossing_arms``,
0 or 1, and with it on ``crossing_arm_reach`` from ``--arm_reaches``, ``min_chromosome_pixels`` of
:mod:`amfl.covered_chromosomes` from ``--chromosome_pixels``) is then applied to its raw
labels, followed by the model's naming, and scored: Pommier Dice, IoU and Hausdorff in the
network's 128 x 128 frame, as ``amfl.evaluate`` scores the test, and the real pairs' mean Dice
per kind and input. Test pairs are never read.

Scored on every validation sample instead (before stop 35), a merge looked better than it is:
on samples without overlap it removes invented overlap, each a Hausdorff of the image diagonal
for that class, while on the scored test, where every sample has overlap, it can remove a small
true one. ``--save_to`` writes a copy of the model folder with the chosen settings in its
preprocessor::

    python -m amfl.overlap_sweep --model space/model --sizes 0 10 --brightnesses 0 1.05 1.1
    python -m amfl.overlap_sweep --model space/model --sizes 10 --brightnesses 1.1 --save_to runs/default-merged
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import amfl.hub
from amfl.data.adir import list_metaphases
from amfl.data.dataset import load_pairs
from amfl.data.protocol import split_pairs
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.sources import SourceError
from amfl.markdown import markdown_table, show_and_save
from amfl.metrics import score_batch
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import REAL_INPUTS, RealPredictions, predict_real_pairs, score_predictions
from amfl.segmentation import Segmenter, limit_threads
from amfl.sweep_gate import SETTING_COLUMNS


def network_labels(segmenter: Segmenter, images: np.ndarray, progress: bool) -> np.ndarray:
    """(N, H, W) labels of ``segmenter`` for each grey image, one image at a time."""
    return np.stack([
        segmenter.segment_grey(image.astype(np.float32)).labels
        for image in tqdm(images, desc="Pommier validation", disable=not progress, leave=False)
    ])


def seen_images(output: Preprocessor, greys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each grey image as the network saw it (:meth:`Prepared.unpadded`), for the brightness test."""
    return [output.prepare(grey[None].astype(np.float32)).unpadded()[0] for grey in greys]


def settings_grid(
    output: Preprocessor, sizes: Sequence[int], shares: Sequence[float], brightnesses: Sequence[float],
    part_shares: Sequence[float] = (0.0,), piece_shares: Sequence[float] = (0.0,),
    crossing_arms: Sequence[bool] = (False,), arm_reaches: Sequence[int] = (0,),
    chromosome_pixels: Sequence[int] = (0,),
) -> list[Preprocessor]:
    """``output`` with every combination of the three stray-overlap settings, the small-part
    share, the cut-piece share, the crossing-arms step (on at each arm reach; off, the reach does
    nothing and is 0) and the covered chromosomes' size."""
    arm_steps = [(arms, reach) for arms in dict.fromkeys(crossing_arms)
                 for reach in (arm_reaches if arms else (0,))]
    return [
        dataclasses.replace(
            output, min_overlap_pixels=size, min_overlap_border_share=share, min_overlap_brightness=brightness,
            min_part_share=part_share, cut_piece_share=piece_share, crossing_arms=arms, crossing_arm_reach=reach,
            min_chromosome_pixels=covered,
        )
        for size, share, brightness, part_share, piece_share, (arms, reach), covered
        in itertools.product(sizes, shares, brightnesses, part_shares, piece_shares, arm_steps, chromosome_pixels)
    ]


@dataclass(frozen=True)
class NetworkOutputs:
    """What the network gave on the validation pairs, before any output step: the scored Pommier
    samples' labels, truths and seen images (N, H, W) at their own size, and the real pairs'
    labels with their seen images."""

    pommier_labels: np.ndarray
    pommier_truths: np.ndarray
    pommier_images: np.ndarray
    real: RealPredictions
    real_images: dict[str, list[np.ndarray]]


def sweep_rows(grid: Sequence[Preprocessor], outputs: NetworkOutputs) -> list[dict[str, object]]:
    """One row per preprocessor of ``grid``: its output steps applied to ``outputs``, scored."""
    rows = []
    for output in grid:
        pommier = output.finish(outputs.pommier_labels, outputs.pommier_images)
        means = score_batch(output.pad_labels(pommier), output.pad_labels(outputs.pommier_truths)).means
        settings = (output.min_overlap_pixels, output.min_overlap_border_share, output.min_overlap_brightness,
                    output.min_part_share, output.cut_piece_share, int(output.crossing_arms), output.crossing_arm_reach,
                    output.min_chromosome_pixels)
        row: dict[str, object] = {
            **dict(zip(SETTING_COLUMNS, settings, strict=True)),
            "Pommier Dice": means["dice"],
            "Pommier IoU": means["iou"], "Pommier Hausdorff": means["hausdorff"],
        }
        finished = RealPredictions(outputs.real.model, outputs.real.pairs, {
            source: [output.finish(labels, image) for labels, image in zip(maps, outputs.real_images[source], strict=True)]
            for source, maps in outputs.real.labels.items()
        })
        for scores in score_predictions(finished):
            row[f"{scores.kind} {scores.input} Dice"] = scores.means["dice"]
        rows.append(row)
    return rows


def sweep_table(rows: Sequence[dict[str, object]]) -> str:
    """``rows`` as the markdown table that ``--out`` writes and :mod:`amfl.sweep_gate` reads."""
    cells = [[f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()] for row in rows]
    return markdown_table(list(rows[0]), cells)


def save_with_settings(model: Path, chosen: Preprocessor, target: Path) -> Path:
    """A copy of the model folder ``model`` with ``chosen`` as its saved preprocessor, and a card
    that lists ``chosen`` and no scores: those of the copied card were measured through other
    output steps."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new folder for --save_to")
    shutil.copytree(model, target)
    saved = chosen.save(target)
    amfl.hub.write_model_card(target)
    return saved


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 5, 10, 15, 20, 30], help="min_overlap_pixels to try")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0], help="min_overlap_border_share to try (0 to 0.5)")
    parser.add_argument("--brightnesses", type=float, nargs="+", default=[0.0], help="min_overlap_brightness to try (0 to 10)")
    parser.add_argument("--part_shares", type=float, nargs="+", default=[0.0],
                        help="min_part_share to try (0 to 1; amfl.pair_parts)")
    parser.add_argument("--piece_shares", type=float, nargs="+", default=[0.0],
                        help="cut_piece_share to try (0 to 1; amfl.piece_names)")
    parser.add_argument("--crossing_arms", type=int, nargs="+", choices=(0, 1), default=[0],
                        help="crossing_arms to try: 0 off, 1 on (amfl.crossing_arms)")
    parser.add_argument("--arm_reaches", type=int, nargs="+", default=[0],
                        help="crossing_arm_reach to try with crossing arms on (pixels an arm reaches from the overlap)")
    parser.add_argument("--chromosome_pixels", type=int, nargs="+", default=[0],
                        help="min_chromosome_pixels to try (a chromosome this small in a cluster with overlap "
                             "becomes overlap; amfl.covered_chromosomes)")
    parser.add_argument("--h5", type=Path, default=None, help="rebuilt Pommier dataset (default: the cache of amfl.data build)")
    parser.add_argument("--adir", type=Path, default=None, help="ADIR metaphase folder (default $AMFL_ADIR or the shared data)")
    parser.add_argument("--save_to", type=Path, default=None, help="with one value of each setting: copy the model folder here with them")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    args = parser.parse_args(argv)
    if any(size < 0 for size in args.sizes):
        parser.error(f"--sizes must be 0 or more pixels; got {args.sizes}")
    if not all(0 <= share <= 0.5 for share in args.shares):
        parser.error(f"--shares must be from 0 to 0.5; got {args.shares}")
    if not all(0 <= brightness <= 10 for brightness in args.brightnesses):
        parser.error(f"--brightnesses must be from 0 to 10; got {args.brightnesses}")
    for name in ("arm_reaches", "chromosome_pixels"):
        if any(pixels < 0 for pixels in getattr(args, name)):
            parser.error(f"--{name} must be 0 or more pixels; got {getattr(args, name)}")
    if args.arm_reaches != [0] and 1 not in args.crossing_arms:
        parser.error("--arm_reaches applies only to the crossing-arms step; add --crossing_arms 1 (or 0 1)")
    for name in ("part_shares", "piece_shares"):
        if not all(0 <= share <= 1 for share in getattr(args, name)):
            parser.error(f"--{name} must be from 0 to 1; got {getattr(args, name)}")
    swept = (args.sizes, args.shares, args.brightnesses, args.part_shares, args.piece_shares, args.crossing_arms,
             args.arm_reaches, args.chromosome_pixels)
    if args.save_to is not None and any(len(values) != 1 for values in swept):
        parser.error("--save_to takes exactly one value of --sizes, --shares, --brightnesses, --part_shares, "
                     "--piece_shares, --crossing_arms, --arm_reaches and --chromosome_pixels, the ones chosen")
    if args.save_to is not None and not Path(args.model).is_dir():
        parser.error(f"--save_to copies a local model folder; {args.model} is not one")
    if args.save_to is not None and args.save_to.exists():
        parser.error(f"--save_to {args.save_to} already exists; choose a new folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    try:
        model = amfl.hub.from_pretrained(args.model)
        output = amfl.hub.load_preprocessor(args.model, model)
        real_pairs = extract_real_pairs(list_metaphases(args.adir), progress=False).select(split="validation")
        pommier = split_pairs(load_pairs(args.h5, progress=False)).validation_scored
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    segmenter = Segmenter(model, args.model, output.without_output_steps(naming="network"))
    real = predict_real_pairs(args.model, segmenter, real_pairs)
    outputs = NetworkOutputs(
        network_labels(segmenter, pommier.images, progress=sys.stderr.isatty()), pommier.labels,
        np.stack(seen_images(output, pommier.images)), real,
        {source: seen_images(output, [getattr(pair, source) for pair in real_pairs]) for source in REAL_INPUTS},
    )
    grid = settings_grid(output, args.sizes, args.shares, args.brightnesses, args.part_shares, args.piece_shares,
                         [bool(arms) for arms in args.crossing_arms], args.arm_reaches, args.chromosome_pixels)
    table = sweep_table(sweep_rows(grid, outputs))
    show_and_save(table, args.out)
    if args.save_to is not None:
        print(f"saved {save_with_settings(Path(args.model), grid[0], args.save_to)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
