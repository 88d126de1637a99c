"""``python -m amfl.interpolate``: models on the line from a starting model to its fine-tune.

Each weight ``w`` gives a ``from_pretrained`` folder ``OUT/weight-<w>`` holding
``(1 - w) * start + w * tuned`` (``amfl.models.interpolation``) with the start's
preprocessing; given several fine-tunes (epochs of one run), ``tuned`` is their mean. With
``--validate_run`` every folder, and the start itself, is scored on the validation sets of
that training run (its ``training_config.json``: the Pommier validation pairs with overlap,
scored as the test is, and, for a mixture run, the real validation pairs), never on a test
split, so the weight can be chosen before any test score is seen. The chosen weight is the
one with the best mean validation Dice among those that keep the start's Pommier validation
Dice, the rule of the trainer's ``--hold_pommier``; ``--pommier_margin`` asks more of them:
a Pommier validation Dice that many points above the start's, since a choice only 0.1-0.2
points above it lost Pommier test Dice twice (``results/real-image/README.md``, stop 24).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator
from torch.utils.data import DataLoader

import amfl.hub
from amfl.markdown import markdown_table
from amfl.models.interpolation import interpolated_model, mean_weights, read_weights
from amfl.scoring import evaluate
from amfl.training.config import CONFIG_FILE, TrainConfig
from amfl.training.data import evaluation_set, training_preprocessor
from amfl.training.loop import MAIN_VALIDATION
from amfl.training.mixture import load_run_data

#: Written into every interpolated folder: where its weights came from.
SOURCE_FILE = "interpolation.json"
#: The validation table of a sweep, as JSON and markdown, in OUT.
RESULTS_STEM = "interpolation"


@dataclass(frozen=True)
class WeightScore:
    """Validation Dice of one interpolated model, per validation set."""

    weight: float
    folder: str
    dice: dict[str, float]

    @property
    def mean(self) -> float:
        return sum(self.dice.values()) / len(self.dice)


def weight_folder(out: Path, weight: float) -> Path:
    return Path(out) / f"weight-{weight:g}"


def write_interpolations(start: Path, tuned: list[Path], weights: list[float], out: Path) -> list[Path]:
    """Save one ``from_pretrained`` folder per weight, toward the mean of the ``tuned``
    weights; returns the folders in the order of ``weights``."""
    start_model = amfl.hub.from_pretrained(start)
    preprocessor = amfl.hub.load_preprocessor(start, start_model)
    tuned_weights = mean_weights([read_weights(path) for path in tuned])
    # Every weight is made before any is saved, so a bad one leaves no partial output behind.
    models = [interpolated_model(start_model, tuned_weights, weight) for weight in weights]
    folders = []
    for weight, model in zip(weights, models, strict=True):
        folder = weight_folder(out, weight)
        amfl.hub.save_model_folder(model, folder, preprocessor)
        source = {"start": str(start), "tuned": [str(path) for path in tuned], "weight": weight}
        (folder / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        folders.append(folder)
    return folders


def read_run_config(run_dir: Path, start: Path) -> TrainConfig:
    """The config of the training run in ``run_dir``, whose validation sets score the sweep.

    Raises ValueError when ``start`` prepares images or names its output differently from
    that run (every interpolated folder gets the start's preprocessor), as its validation
    scores would then not mean anything; checked before any folder is written or any data
    loaded.
    """
    config_path = Path(run_dir) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"--validate_run {run_dir} has no {CONFIG_FILE}: give the output_dir of a training run")
    config = TrainConfig(**json.loads(config_path.read_text("utf-8")))
    saved, run = amfl.hub.load_preprocessor(start, amfl.hub.from_pretrained(start)), training_preprocessor(config)
    if saved != run:
        differences = ", ".join(
            f"{name} {value!r} against the run's {getattr(run, name)!r}"
            for name, value in saved.to_dict().items() if getattr(run, name) != value
        )
        raise ValueError(f"{start} prepares images or names its output differently from the run in {run_dir} "
                         f"({differences}); its validation scores would not mean anything")
    return config


def validate(folders: list[Path], weights: list[float], config: TrainConfig, progress: bool = True) -> list[WeightScore]:
    """Validation Dice of each folder on the validation sets of the run of ``config``."""
    data = load_run_data(config, progress=progress)
    accelerator = Accelerator(cpu=config.cpu)
    sets = {MAIN_VALIDATION: data.validation, **data.extra_validation}
    loaders = {
        name: accelerator.prepare(DataLoader(evaluation_set(split), batch_size=config.eval_batch_size))
        for name, split in sets.items()
    }
    scores = []
    for folder, weight in zip(folders, weights, strict=True):
        model = accelerator.prepare(amfl.hub.from_pretrained(folder))
        dice = {
            name: evaluate(accelerator, model, loader, f"weight {weight:.2f} {name}", progress, data.preprocessor).means["dice"]
            for name, loader in loaders.items()
        }
        scores.append(WeightScore(weight, str(folder), dice))
    return scores


def choose(scores: list[WeightScore], pommier_margin: float = 0.0) -> WeightScore:
    """The best mean validation Dice among the start (weight 0) and the weights whose Pommier
    validation Dice is at least the start's plus ``pommier_margin`` (Dice points)."""
    start = next(score for score in scores if score.weight == 0.0)
    floor = start.dice[MAIN_VALIDATION] + pommier_margin
    qualified = [start, *(score for score in scores if score.dice[MAIN_VALIDATION] >= floor)]
    return max(qualified, key=lambda score: score.mean)


def write_results(scores: list[WeightScore], chosen: WeightScore, out: Path, command: str) -> str:
    """interpolation.json and interpolation.md in ``out``; returns the markdown table."""
    names = list(scores[0].dice)
    rows = [
        [f"{score.weight:.2f}", *(f"{score.dice[name]:.2f}" for name in names), f"{score.mean:.2f}",
         "chosen" if score is chosen else ""]
        for score in scores
    ]
    labels = [("Pommier" if name == MAIN_VALIDATION else name) + " validation Dice" for name in names]
    table = markdown_table(["weight", *labels, "mean", ""], rows)
    record = {"command": command, "chosen_weight": chosen.weight, "scores": [asdict(score) for score in scores]}
    (out / f"{RESULTS_STEM}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out / f"{RESULTS_STEM}.md").write_text(f"`{command}`\n\n{table}\n", encoding="utf-8")
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Models between a starting model and its fine-tune (weight 0 = start, 1 = fine-tune).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("start", type=Path, help="the model folder the fine-tune started from (for a --widen run, the widened start: the run's epoch-0 model folder)")
    parser.add_argument("tuned", type=Path, nargs="+", help="the fine-tune: a model folder, a training checkpoint folder or a .safetensors file; several (e.g. consecutive epochs of one run) are averaged into one")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 0.75], help="fine-tune shares to write; above 1 goes past the fine-tune (from the start toward a blend made at w, 1/w gives back its fine-tune)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the weight-<w> model folders")
    parser.add_argument("--validate_run", type=Path, default=None, help="output_dir of the fine-tune's training run: score every weight on its validation sets and choose one")
    parser.add_argument("--pommier_margin", type=float, default=0.0, help="Dice points above the start's Pommier validation Dice that a chosen weight must reach")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.pommier_margin < 0:
        parser.error(f"--pommier_margin must be 0 or more Dice points; got {args.pommier_margin}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m amfl.interpolate " + shlex.join(argv if argv is not None else sys.argv[1:])
    weights = sorted(set(args.weights) | ({0.0} if args.validate_run else set()))
    try:
        config = None if args.validate_run is None else read_run_config(args.validate_run, args.start)
        folders = write_interpolations(args.start, args.tuned, weights, args.out)
        if config is None:
            print("\n".join(map(str, folders)))
            return 0
        scores = validate(folders, weights, config, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    chosen = choose(scores, args.pommier_margin)
    print(write_results(scores, chosen, args.out, command))
    print(f"chosen: weight {chosen.weight:.2f} ({chosen.folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
