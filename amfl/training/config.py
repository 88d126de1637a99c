"""Every setting of a training run in one dataclass, the command line generated from it.

The defaults are the paper's (Section III.A.2, eq. 5-7). The resolved settings are written
as ``training_config.json`` beside the weights, so a model folder says how it was trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amfl.losses import SEGMENTATION_LOSSES
from amfl.models import MODELS
from amfl.naming import PAIR_NAMINGS
from amfl.training.augment import AUGMENTATIONS

CONFIG_FILE = "training_config.json"
MIXED_PRECISION = ("no", "fp16", "bf16")
#: What chooses the epoch kept (``--select_on``).
SELECTIONS = ("validation", "benchmark")


def _option(default: Any, help: str, **argparse_extra: Any) -> Any:
    """A dataclass field whose metadata carries its command-line help."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: list(default), metadata={"help": help, **argparse_extra})
    return field(default=default, metadata={"help": help, **argparse_extra})


@dataclass
class TrainConfig:
    """Settings of one run; see ``python train_accelerate.py --help`` for each."""

    # What is trained.
    model: str = _option("amfl-paper", "generator from the model registry", choices=tuple(MODELS))
    base_width: int | None = _option(None, "override the generator's base width f(0)")
    loss: str = _option("lovasz", "segmentation loss: Table V's five; lovasz_image (Lovasz-Softmax per image over all four classes, as the metrics score); or lovasz_both (the mean of lovasz and lovasz_image; amfl.losses.lovasz)", choices=tuple(SEGMENTATION_LOSSES))
    pair_naming: str = _option("strict", "chromosome names in the loss: 'strict', the truth's (1 the smaller); 'free', per sample the naming the prediction agrees with more, and the saved model names its output by area (amfl.naming); 'free_overlapping', free for samples with overlap only", choices=tuple(PAIR_NAMINGS))
    gan: bool = _option(True, "train with the PatchGAN discriminator (--no-gan: the generator alone)")
    init_from: str | None = _option(None, "start the generator from this model folder or Hub id (fine-tuning); it must match --model")
    widen: bool = _option(False, "with --init_from and --base_width: widen the saved NestedUNet to --base_width so that it starts computing exactly what it computed (amfl.models.widening); the new channels then learn")
    discriminator_width: int = _option(64, "channels of the discriminator's first convolution")
    lambda_segmentation: float = _option(10.0, "weight of the segmentation loss beside the LSGAN term (eq. 7)")
    distil_pommier: float = _option(0.0, "with --init_from and an ADIR source: add this weight times the divergence of the generator's output from the starting model's on the Pommier training pairs (amfl.losses.distillation), so that the real pairs move the network without moving its Pommier answers; 0: off")
    # How it is trained.
    epochs: int = _option(200, "most epochs to train")
    batch_size: int = _option(64, "images per step and process")
    lr_generator: float = _option(2e-4, "Adam learning rate of the generator")
    lr_discriminator: float = _option(2e-4, "Adam learning rate of the discriminator")
    adam_betas: tuple[float, float] = _option((0.5, 0.999), "Adam betas of both optimisers", nargs=2)
    hold_pommier: bool = _option(False, "with --init_from: never keep an epoch whose main (Pommier) validation Dice is below the starting model's, which is scored first as epoch 0")
    freeze_batchnorm: bool = _option(False, "with --init_from: the generator's batch norm keeps the starting model's running statistics (a mixture of other images would otherwise move them, and the start's accuracy with them)")
    patience: int = _option(15, "stop after this many epochs without a better validation Dice")
    seed: int = _option(123, "seed of the split, the initialisation and the shuffling")
    cpu: bool = _option(False, "run on the CPU even when a GPU is present (with torchrun: one CPU process per rank)")
    mixed_precision: str = _option("no", "autocast precision", choices=MIXED_PRECISION)
    channels_last: bool = _option(False, "NHWC memory layout: faster convolutions on recent GPUs, and on a 2-core CPU about 1.3x for the small preset (benchmarks/bench_training.py)")
    augment: list[str] = _option([], "training augmentations (default none; see amfl.training.augment)", nargs="*", choices=tuple(AUGMENTATIONS))
    crop_size: int | None = _option(None, "train on random crop_size x crop_size windows of each sample (a multiple of the generator's input divisor, e.g. 96 of 128: faster steps); validation and inference see whole samples")
    eval_batch_size: int = _option(128, "images per evaluation step and process")
    num_workers: int = _option(0, "data loader worker processes")
    # Data.
    h5: Path | None = _option(None, "train on an original .h5 file instead of the rebuilt set")
    data_dir: Path | None = _option(None, "folder with DAPI.tif and Cy3.tif (default $AMFL_DATA, else ../shared/data)")
    dataset_cache: Path | None = _option(None, "rebuilt dataset cache file (default under $AMFL_CACHE)")
    raw_labels: bool = _option(False, "train on the uncleaned labels")
    image_pad_value: float = _option(0.0, "grey value padding 94x93 to 128x128 (the paper used 255)")
    max_samples: int | None = _option(None, "use at most this many samples of each split (smoke runs)")
    # ADIR sources beside the Pommier pairs (amfl.training.mixture).
    pommier_train_count: int | None = _option(None, "train on the first N Pommier training pairs only (default all)")
    clean_pommier: bool = _option(False, "leave the Pommier training pairs unaugmented (they look like the Pommier test already); the ADIR sources get all of --augment")
    synthetic_count: int = _option(0, "add N synthetic pairs with unlabelled neighbours made from the ADIR training cases")
    synthetic_touching_count: int = _option(0, "add N synthetic pairs that only touch (no overlap label), with unlabelled neighbours, made from the ADIR training cases, and the same N again masked (every pixel off the pair set to 0): 2N samples. Every Pommier and --synthetic_count pair overlaps, and the real touching pairs are few (83), so models paint stray overlap where chromosomes meet")
    real_repeats: int = _option(0, "add the real ADIR training-split pairs (128 x 128 windows), each N times; with this or --synthetic_count, the epoch kept is the best on Pommier and real validation pairs together")
    touching_repeats: int = _option(0, "add the real training pairs that only touch N more times after --real_repeats ones: every Pommier pair overlaps, so a Pommier-heavy mixture learns to paint overlap where there is none")
    masked_repeats: int = _option(0, "add the real training windows again N times with every pixel off the pair set to 0: the masked input of the real benchmark and of the whole-metaphase path, which raw windows never show")
    masked_overlapping_repeats: int = _option(0, "add the real training pairs that overlap N more times masked, after the --masked_repeats ones: --masked_repeats weighs every pair alike, and the masked overlapping crops are the real benchmark's set that fine-tuning loses first")
    adir_dir: Path | None = _option(None, "ADIR M-FISH folder (default $AMFL_ADIR, else ../shared/data/adir-mfish)")
    benchmark_validation: bool = _option(False, "after each epoch also score the generator on the real-pair benchmark's validation crops as amfl.evaluate scores a saved model (strict naming, the saved preprocessing and output steps; about 10 s on 2 CPU cores) and log the four Dice as validation_benchmark; the epoch kept is still chosen on the run's own validation unless --select_on benchmark")
    select_on: str = _option("validation", "what chooses the epoch kept: 'validation', the mean Dice of the run's validation sets (the Pommier split, and with ADIR sources the real windows); 'benchmark', the mean of the four real-pair benchmark validation Dice of --benchmark_validation (scored then with or without that flag). --hold_pommier applies to either", choices=SELECTIONS)
    # Output.
    output_dir: Path = _option(Path("runs/amfl"), "folder for checkpoints, logs, the model and metrics")
    resume: bool = _option(False, "continue from the newest checkpoint in output_dir")
    keep_epoch_models: bool = _option(False, "also save every epoch's generator (epoch 0: the starting model of a fine-tune) as a from_pretrained folder under output_dir/epoch_models/, for choosing or interpolating later; the checkpoints keep only the last two epochs")
    push_to_hub: bool = _option(False, "upload the model folder (and dataset card) when done")
    hub_model_id: str | None = _option(None, "Hub model repository, e.g. user/amfl-nestedunet")
    hub_dataset_id: str | None = _option(None, "Hub dataset repository to push the exported dataset to")
    hub_private: bool = _option(False, "create Hub repositories as private")
    quiet: bool = _option(False, "no progress bars")

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        self.adam_betas = tuple(self.adam_betas)
        for name in ("epochs", "batch_size", "patience", "eval_batch_size", "discriminator_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("synthetic_count", "synthetic_touching_count", "real_repeats", "touching_repeats", "masked_repeats", "masked_overlapping_repeats"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more; got {getattr(self, name)}")
        for name in ("base_width", "max_samples", "pommier_train_count", "crop_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 when given; got {getattr(self, name)}")
        spec = MODELS.get(self.model.lower())
        if self.crop_size is not None and spec is not None and self.crop_size % spec.model_class.input_divisor:
            raise ValueError(f"crop_size {self.crop_size} is not a multiple of {spec.model_class.input_divisor}, which {self.model} needs")
        if self.distil_pommier < 0:
            raise ValueError(f"distil_pommier must be 0 or more; got {self.distil_pommier}")
        for name in ("hold_pommier", "freeze_batchnorm", "widen", "distil_pommier"):
            if getattr(self, name) and self.init_from is None:
                raise ValueError(f"--{name} keeps something of the starting model; it needs --init_from (the model to fine-tune)")
        if self.widen and self.base_width is None:
            raise ValueError("--widen needs --base_width (the width to widen the starting model to)")
        for name in ("clean_pommier", "distil_pommier"):
            if getattr(self, name) and not (self.synthetic_count or self.synthetic_touching_count or self.real_repeats):
                raise ValueError(f"--{name} marks the Pommier pairs among ADIR ones; it needs --synthetic_count, --synthetic_touching_count or --real_repeats")
        for name, what in (("touching_repeats", "more of the real touching pairs"), ("masked_repeats", "the real pairs masked"), ("masked_overlapping_repeats", "the real overlapping pairs masked")):
            if getattr(self, name) and not self.real_repeats:
                raise ValueError(f"--{name} adds {what}; it needs --real_repeats (the real pairs themselves)")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (the model repository to create or update)")
        if not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ValueError(f"adam_betas must lie in [0, 1); got {self.adam_betas}")

    @property
    def scores_benchmark(self) -> bool:
        """Whether each epoch is scored on the real-pair benchmark's validation crops."""
        return self.benchmark_validation or self.select_on == "benchmark"

    def to_json(self) -> str:
        values = {key: str(value) if isinstance(value, Path) else value for key, value in dataclasses.asdict(self).items()}
        return json.dumps(values, indent=2)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``train_accelerate.py``: one option per TrainConfig field."""
    parser = argparse.ArgumentParser(
        description="Train the AMFL cGAN (or a generator alone) with Accelerate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(TrainConfig)
    for option in dataclasses.fields(TrainConfig):
        extra = {key: value for key, value in option.metadata.items() if key != "help"}
        default = option.default_factory() if option.default is dataclasses.MISSING else option.default
        kind = _argument_type(hints[option.name])
        flag = f"--{option.name}"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=option.metadata["help"])
        else:
            parser.add_argument(flag, type=kind, default=default, help=option.metadata["help"], **extra)
    return parser


def _argument_type(hint: Any) -> type:
    """The scalar type argparse converts to: X for X, X | None, list[X] and tuple[X, ...]."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) in (list, tuple):
        hint = typing.get_args(hint)[0]
    return hint


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """TrainConfig from command-line arguments; argparse reports bad values and exits 2."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return TrainConfig(**vars(arguments))
    except ValueError as error:
        parser.error(str(error))
