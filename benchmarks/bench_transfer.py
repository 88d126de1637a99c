"""What closes the gap between synthetic and real pairs: the same small model, trained for the
same budget on three training sets, scored on the real validation pairs.

    python benchmarks/bench_transfer.py [--train_count 1500] [--epochs 3] [--threads 1]
        [--runs isolated neighbours mixed] [--data_seed 0] [--out runs/transfer]

Every run trains amfl-small from scratch through ``amfl.training.train`` (generator only,
Lovasz loss, batch 16, channels-last, seed 123, no augmentation) on ``--train_count``
128 x 128 samples for ``--epochs`` epochs:

- ``isolated``: synthetic pairs alone on chromosome-free patches (``neighbours=0``);
- ``neighbours``: synthetic pairs with REAL_NEIGHBOURS further singles around them;
- ``mixed``: the first three quarters of the ``neighbours`` set, then the real training-split
  pairs (overlapping and touching) as windows of their metaphases
  (:mod:`amfl.data.real_windows`), repeated in turn to fill the last quarter (REAL_SHARE).

The trainer selects the epoch by Dice on the real validation-split pairs as windows (the
same cut), and its required test split is that set again: no pair of the real test split
is used here (they belong to the final model). Each run trains into an emptied
``<out>/<run>``; its saved model (``<out>/<run>/model``) is then scored with :func:`amfl.real_scoring.score_model` on the
real validation pairs' own crops, ``raw`` and ``masked``, beside the floor
(:func:`amfl.real_scoring.score_floor`). Printed and written to ``<out>/transfer.md``: one
markdown table (run x kind x input: Dice, IoU, Hausdorff); ``<out>/transfer.json`` holds every
score, each run's composition, time and selected epoch, and the command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amfl.data.adir import list_metaphases
from amfl.data.pairs import OverlapPairs
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.real_windows import real_windows
from amfl.data.synthetic import REAL_NEIGHBOURS, Ingredients, ingredients_from, synthesise
from amfl.markdown import markdown_table
from amfl.real_scoring import RealPairScores, score_floor, score_model
from amfl.segmentation import Segmenter, limit_threads
from amfl.training import TrainConfig, train
from amfl.training.data import SplitTensors, TrainingData, training_preprocessor

#: The training sets compared, in the order they are run and printed.
RUNS = ("isolated", "neighbours", "mixed")
#: Share of the ``mixed`` set made of (repeated) real training windows.
REAL_SHARE = 0.25
#: Defaults sized so that one run takes about 8 minutes on this project's 2-core CPU while
#: another process uses it (one epoch, one thread: 320 samples 36 s, 960 samples 103 s, so
#: about 9.5 samples/s and 15 s of set-up and evaluation per epoch).
DEFAULT_TRAIN_COUNT = 1500
DEFAULT_EPOCHS = 3
#: Torch CPU threads. On the shared 2-core CPU a second OpenMP thread mostly waits: one epoch
#: of 320 samples took 36 s with one thread and 148 s with two, and scoring ten real pairs
#: 0.45 s against 18 s.
DEFAULT_THREADS = 1
#: The model and the fixed training settings of every run.
MODEL = "amfl-small"
BATCH_SIZE = 16
TRAINING_SEED = 123
#: Scores in the table: name in ``amfl.metrics`` -> column header.
COLUMNS = {"dice": "Dice", "iou": "IoU", "hausdorff": "Hausdorff (px)"}
TABLE_FILE, RECORD_FILE = "transfer.md", "transfer.json"


def run_config(run: str, epochs: int, out: Path) -> TrainConfig:
    """The training settings of one run: the same for every training set."""
    return TrainConfig(
        model=MODEL, gan=False, loss="lovasz", batch_size=BATCH_SIZE, channels_last=True, quiet=True,
        seed=TRAINING_SEED, epochs=epochs, output_dir=out / run,
    )


def concatenated(parts: Sequence[OverlapPairs]) -> OverlapPairs:
    return OverlapPairs(
        np.concatenate([part.images for part in parts]), np.concatenate([part.labels for part in parts])
    )


def training_pairs(
    run: str, count: int, ingredients: Ingredients, real_train: OverlapPairs, seed: int
) -> tuple[OverlapPairs, dict[str, int]]:
    """The ``count`` training samples of ``run`` and what they are made of (sample counts)."""
    if run == "isolated":
        return synthesise(count, ingredients, seed=seed), {"synthetic isolated": count}
    real = round(REAL_SHARE * count) if run == "mixed" else 0
    synthetic = synthesise(count - real, ingredients, seed=seed, neighbours=REAL_NEIGHBOURS)
    if not real:
        return synthetic, {"synthetic with neighbours": count}
    repeated = real_train.subset(np.arange(real) % len(real_train))
    composition = {"synthetic with neighbours": count - real, "real training windows": real,
                   "distinct real windows": min(real, len(real_train))}
    return concatenated([synthetic, repeated]), composition


def train_run(config: TrainConfig, pairs: OverlapPairs, validation: OverlapPairs) -> dict[str, object]:
    """Train one run from an emptied output folder; its time, selected epoch and Dice."""
    shutil.rmtree(config.output_dir, ignore_errors=True)
    preprocessor = training_preprocessor(config)
    held_out = SplitTensors.from_pairs(validation, preprocessor)
    data = TrainingData(SplitTensors.from_pairs(pairs, preprocessor), held_out, held_out, preprocessor=preprocessor)
    started = time.perf_counter()
    result = train(config, data=data, command=f"benchmarks/bench_transfer.py run {config.output_dir.name}")
    return {
        "train_seconds": round(time.perf_counter() - started, 1),
        "best_epoch": result.state.best_epoch,
        "best_validation_window_dice": result.state.best_dice,
        "model": str(result.model_dir),
    }


def table(rows: Sequence[RealPairScores]) -> str:
    """The markdown table: one row per run (or the floor), kind and input."""
    header = ["Run", "Pairs", "Input", "Images", *COLUMNS.values()]
    cells = [
        [row.model, row.kind, row.input, str(row.images), *(f"{row.means[name]:.2f}" for name in COLUMNS)]
        for row in rows
    ]
    return markdown_table(header, cells)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_count", type=int, default=DEFAULT_TRAIN_COUNT,
                        help=f"training samples of every run (default {DEFAULT_TRAIN_COUNT:,})")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs of every run (default {DEFAULT_EPOCHS})")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS), help="training sets to run (default all)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"torch CPU threads (default {DEFAULT_THREADS}; see DEFAULT_THREADS)")
    parser.add_argument("--data_seed", type=int, default=0, help="seed of the synthetic pairs (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"), help="output folder (default runs/transfer)")
    args = parser.parse_args(argv)
    if args.train_count < 2 * BATCH_SIZE:
        parser.error(f"--train_count must be at least {2 * BATCH_SIZE} (two batches)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/bench_transfer.py", *(sys.argv[1:] if argv is None else argv)])
    limit_threads(args.threads)
    metaphases = list_metaphases()
    real = extract_real_pairs(metaphases, progress=False)
    validation_pairs = real.select(split="validation")
    real_train = real_windows(real.select(split="train"), metaphases)
    validation = real_windows(validation_pairs, metaphases)
    ingredients = ingredients_from(metaphases)
    print(f"real windows: {len(real_train)} training, {len(validation)} validation pairs; "
          f"singles: {len(ingredients.rotations)}")
    rows, runs = score_floor(validation_pairs), {}
    for run in args.runs:
        pairs, composition = training_pairs(run, args.train_count, ingredients, real_train, args.data_seed)
        runs[run] = {"composition": composition, **train_run(run_config(run, args.epochs, args.out), pairs, validation)}
        rows += score_model(run, Segmenter.from_pretrained(runs[run]["model"]), validation_pairs)
        print(f"{run}: {composition}, {runs[run]['train_seconds']} s, best epoch {runs[run]['best_epoch']}")
    printed = table(rows)
    print(printed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / TABLE_FILE).write_text(f"`{command}`\n\n{printed}\n", encoding="utf-8")
    record = {
        "command": command, "train_count": args.train_count, "epochs": args.epochs, "data_seed": args.data_seed,
        "threads": args.threads,
        "scored_on": "real validation-split pairs (crops), raw and masked", "runs": runs,
        "rows": [row.row() for row in rows],
    }
    (args.out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / TABLE_FILE}, {args.out / RECORD_FILE}")


if __name__ == "__main__":
    main()
