"""How much of a fine-tune's Pommier loss is batch-norm statistics alone.

Scores a model on the run's validation sets (the Pommier pairs and, with ADIR sources, the
real pairs), then lets its batch-norm layers update their running statistics on training
batches of the mixture, with no weight changed, and scores it again. A large drop says
that a fine-tune on the mixture should keep the start's statistics (``--freeze_batchnorm``).

    python benchmarks/batchnorm_drift.py --batches 100 -- --model amfl-small --init_from space/model \\
        --batch_size 16 --augment scale flips rot90 gain_gamma blur background noise --clean_pommier \\
        --pommier_train_count 2000 --synthetic_count 1000 --real_repeats 8

Everything after ``--`` is ``train_accelerate.py``'s options (the mixture, the augmentations
and, as ``--init_from``, the model measured).
"""

from __future__ import annotations

import argparse

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

import amfl.hub
from amfl.scoring import evaluate
from amfl.training.config import parse_config
from amfl.training.data import evaluation_set, training_set
from amfl.training.loop import MAIN_VALIDATION
from amfl.training.mixture import load_run_data


def validation_dice(accelerator: Accelerator, model: torch.nn.Module, sets: dict) -> dict[str, float]:
    return {
        name: round(evaluate(accelerator, model, DataLoader(evaluation_set(split), batch_size=128), name, False).means["dice"], 2)
        for name, split in sets.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=100, help="training batches the statistics see")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("train_options", nargs=argparse.REMAINDER, help="-- then train_accelerate.py's options")
    args = parser.parse_args()
    options = args.train_options[1:] if args.train_options[:1] == ["--"] else args.train_options
    config = parse_config(options)
    if config.init_from is None:
        parser.error("pass the model to measure as --init_from after --")
    if args.batches < 1:
        parser.error(f"--batches must be at least 1; got {args.batches}")
    data = load_run_data(config, progress=not config.quiet)
    accelerator = Accelerator(cpu=True)
    model = amfl.hub.from_pretrained(config.init_from).eval()
    sets = {MAIN_VALIDATION: data.validation, **data.extra_validation}
    print(f"{config.init_from}, its own statistics: validation Dice {validation_dice(accelerator, model, sets)}")
    torch.manual_seed(args.seed)
    loader = DataLoader(training_set(data.train, config.augment, data.preprocessor), batch_size=config.batch_size, shuffle=True)
    model.train()
    with torch.no_grad():
        for index, (images, _) in enumerate(loader):
            if index == args.batches:
                break
            model(images)
    model.eval()
    print(f"statistics from {min(args.batches, len(loader))} training batches of {config.batch_size}, weights unchanged: "
          f"validation Dice {validation_dice(accelerator, model, sets)}")


if __name__ == "__main__":
    main()
