"""Rerun the paper's comparison with one command: train every row of Tables I, II and V with
the same budget, then score them all with ``amfl.evaluate``.

    python -m amfl.reproduce --out runs/paper-tables --epochs 200        # the real thing (GPU)
    python -m amfl.reproduce --out runs/tiny --epochs 1 --max_samples 16  # pipeline check (CPU)

Rows (each trained once even when several tables show it):
- Table II: the ten baselines as plain segmenters (no GAN) with cross entropy, as the paper
  trains them, and AMFL (NestedUNet + GAN + Lovasz-Softmax);
- Table I: AMFL with each U-shaped or large generator instead of NestedUNet;
- Table V: NestedUNet with each of the five losses, without and with the GAN.
Results land in ``<out>/results`` (tables, figures, evaluation.json) with the budget stated.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from amfl import evaluate
from amfl.losses import SEGMENTATION_LOSSES
from amfl.paper_tables import TABLE_V
from amfl.training import TrainConfig, train

TABLE_II_BASELINES = (
    "enet", "bisenetv1", "bisenetv2", "deeplabv3plus", "fastfcn", "unet", "r2unet", "attunet", "r2attunet", "nestedunet",
)
TABLE_I_GENERATORS = ("deeplabv3plus", "fastfcn", "unet", "r2unet", "attunet", "r2attunet")


@dataclass(frozen=True)
class Row:
    """One training run: generator, loss, GAN on or off."""

    model: str
    loss: str
    gan: bool

    @property
    def name(self) -> str:
        return f"{self.model}-{self.loss}-{'gan' if self.gan else 'nogan'}"


def paper_rows() -> list[Row]:
    """Every distinct run behind Tables I, II and V, AMFL first."""
    rows = [Row("nestedunet", "lovasz", True)]
    rows += [Row(model, "ce", False) for model in TABLE_II_BASELINES]
    rows += [Row(model, "lovasz", True) for model in TABLE_I_GENERATORS]
    rows += [Row("nestedunet", loss, gan) for gan in (False, True) for loss in SEGMENTATION_LOSSES if (loss, gan) in TABLE_V]
    return list(dict.fromkeys(rows))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and results/")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs per run (the same for all)")
    parser.add_argument("--patience", type=int, default=15, help="early-stopping patience per run")
    parser.add_argument("--batch_size", type=int, default=64, help="images per training and scoring step")
    parser.add_argument("--max_samples", type=int, default=None, help="samples per split (budget runs)")
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--only", nargs="+", default=None, help="train only these row names (see --list)")
    parser.add_argument("--list", action="store_true", help="print the row names and exit")
    parser.add_argument("--timing_runs", type=int, default=50, help="runs per latency median in Table IV")
    parser.add_argument("--h5", type=Path, default=None, help="an original .h5 instead of the rebuilt set")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = paper_rows()
    if args.list:
        print("\n".join(row.name for row in rows))
        return 0
    if args.only:
        unknown = sorted(set(args.only) - {row.name for row in rows})
        if unknown:
            print(f"error: unknown rows {unknown}; see --list", file=sys.stderr)
            return 2
        rows = [row for row in rows if row.name in args.only]
    folders = []
    for index, row in enumerate(rows, 1):
        print(f"[{index}/{len(rows)}] training {row.name}", flush=True)
        config = TrainConfig(
            model=row.model, loss=row.loss, gan=row.gan, epochs=args.epochs, patience=args.patience,
            batch_size=args.batch_size, max_samples=args.max_samples, mixed_precision=args.mixed_precision,
            h5=args.h5, output_dir=args.out / row.name, quiet=True,
        )
        folders.append(train(config).model_dir)
    budget = {"epochs": args.epochs, "patience": args.patience, "batch_size": args.batch_size, "max_samples": args.max_samples}
    (args.out / "budget.json").write_text(json.dumps(budget, indent=2) + "\n", encoding="utf-8")
    evaluate.evaluate_models(
        folders, [row.name for row in rows], args.out / "results",
        command="python -m amfl.reproduce " + shlex.join(argv if argv is not None else sys.argv[1:]),
        h5=args.h5, max_samples=args.max_samples, timing_runs=args.timing_runs, batch_size=args.batch_size,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
