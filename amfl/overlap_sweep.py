"""Choose a model's stray-overlap settings (:mod:`amfl.small_overlaps`) on validation pairs.

The network runs once per image, on the Pommier validation split and on the real validation
pairs, through the app's path (:class:`amfl.segmentation.Segmenter`); each pair of settings to
try (``min_overlap_pixels`` from ``--sizes`` and ``min_overlap_border_share`` from
``--shares``) is then applied to its raw labels, followed by the model's naming, and scored:
Pommier Dice, IoU and Hausdorff, and the real pairs' mean Dice per kind and input. Test pairs
are never read. ``--save_to`` writes a copy of the model folder with the chosen settings in
its preprocessor::

    python -m amfl.overlap_sweep --model space/model --sizes 0 5 10 15 20 --shares 0 0.1 0.2
    python -m amfl.overlap_sweep --model space/model --sizes 10 --shares 0.1 --save_to runs/default-merged
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import amfl.hub
from amfl.data.adir import list_metaphases
from amfl.data.dataset import load_pairs
from amfl.data.protocol import split_pairs
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.sources import SourceError
from amfl.markdown import markdown_table
from amfl.metrics import score_batch
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.real_scoring import RealPredictions, predict_real_pairs, score_predictions
from amfl.segmentation import Segmenter, limit_threads


def network_labels(segmenter: Segmenter, images: np.ndarray, progress: bool) -> np.ndarray:
    """(N, H, W) labels of ``segmenter`` for each grey image, one image at a time."""
    return np.stack([
        segmenter.segment_grey(image.astype(np.float32)).labels
        for image in tqdm(images, desc="Pommier validation", disable=not progress, leave=False)
    ])


def sweep_rows(
    output: Preprocessor, sizes: list[int], pommier: tuple[np.ndarray, np.ndarray], real: RealPredictions,
    shares: list[float] = (0.0,),
) -> list[dict[str, object]]:
    """One row per size and share: ``output`` with that ``min_overlap_pixels`` and
    ``min_overlap_border_share`` applied to the network's labels (``pommier`` = (labels,
    truths); ``real`` as the network named them), scored."""
    rows = []
    for size, share in itertools.product(sizes, shares):
        finish = dataclasses.replace(output, min_overlap_pixels=size, min_overlap_border_share=share).finish
        means = score_batch(finish(pommier[0]), pommier[1]).means
        row: dict[str, object] = {
            "min overlap pixels": size, "min border share": share, "Pommier Dice": means["dice"],
            "Pommier IoU": means["iou"], "Pommier Hausdorff": means["hausdorff"],
        }
        finished = RealPredictions(real.model, real.pairs, {
            source: [finish(labels) for labels in maps] for source, maps in real.labels.items()
        })
        for scores in score_predictions(finished):
            row[f"{scores.kind} {scores.input} Dice"] = scores.means["dice"]
        rows.append(row)
    return rows


def save_with_settings(model: Path, output: Preprocessor, size: int, share: float, target: Path) -> Path:
    """A copy of the model folder ``model`` with its preprocessor ``output`` saved with
    ``min_overlap_pixels`` = ``size`` and ``min_overlap_border_share`` = ``share``."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new folder for --save_to")
    shutil.copytree(model, target)
    dataclasses.replace(output, min_overlap_pixels=size, min_overlap_border_share=share).save(target)
    return target / PREPROCESSOR_FILE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 5, 10, 15, 20, 30], help="min_overlap_pixels to try")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0], help="min_overlap_border_share to try (0 to 0.5)")
    parser.add_argument("--h5", type=Path, default=None, help="rebuilt Pommier dataset (default: the cache of amfl.data build)")
    parser.add_argument("--adir", type=Path, default=None, help="ADIR metaphase folder (default $AMFL_ADIR or the shared data)")
    parser.add_argument("--save_to", type=Path, default=None, help="with one --sizes and one --shares value: copy the model folder here with them")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    args = parser.parse_args(argv)
    if any(size < 0 for size in args.sizes):
        parser.error(f"--sizes must be 0 or more pixels; got {args.sizes}")
    if not all(0 <= share <= 0.5 for share in args.shares):
        parser.error(f"--shares must be from 0 to 0.5; got {args.shares}")
    if args.save_to is not None and (len(args.sizes) != 1 or len(args.shares) != 1):
        parser.error("--save_to takes exactly one --sizes and one --shares value, the ones chosen")
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
        pommier = split_pairs(load_pairs(args.h5, progress=False)).validation
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    network_only = dataclasses.replace(output, min_overlap_pixels=0, min_overlap_border_share=0.0, naming="network")
    segmenter = Segmenter(model, args.model, network_only)
    pommier_labels = network_labels(segmenter, pommier.images, progress=sys.stderr.isatty())
    real = predict_real_pairs(args.model, segmenter, real_pairs)
    rows = sweep_rows(output, args.sizes, (pommier_labels, pommier.labels), real, args.shares)
    cells = [[f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()] for row in rows]
    table = markdown_table(list(rows[0]), cells)
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    if args.save_to is not None:
        print(f"saved {save_with_settings(Path(args.model), output, args.sizes[0], args.shares[0], args.save_to)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
