"""The adversarial training run on Accelerate: one CPU, one GPU, or many of either.

``accelerate launch train_accelerate.py`` (or ``python train_accelerate.py`` for one process)
calls :func:`train`. Every process builds the same models and data; Accelerate shards the
batches, all-reduces the gradients and gathers the predictions for scoring; only the main
process writes files.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedType, broadcast, set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

import amfl.hub
from amfl.data.export import export_dataset
from amfl.data.protocol import OVERLAP_LABEL
from amfl.losses import create_loss, inverse_frequency_weights
from amfl.metrics import NUM_CLASSES, BatchScores
from amfl.models import NestedUNet, create_discriminator, create_model
from amfl.models.precision import warn_if_bfloat16_is_emulated
from amfl.models.widening import widen_nested_unet
from amfl.scoring import evaluate
from amfl.training import publish, state
from amfl.training.benchmark import BenchmarkValidation
from amfl.training.config import TrainConfig
from amfl.training.data import TrainingData, evaluation_set, training_set
from amfl.training.mixture import load_run_data
from amfl.training.replicas import broadcast_buffers, replicas_agree
from amfl.training.step import AdversarialStep, LossTracker

LOG_FILE = "log.jsonl"
#: Name of the run's own validation split among its validation sets.
MAIN_VALIDATION = "validation"
TRACKER_PROJECT = "amfl"
#: Log key of the real-pair benchmark's validation Dice (``--benchmark_validation``).
BENCHMARK_KEY = "validation_benchmark"


@dataclass(frozen=True)
class TrainResult:
    test_scores: BatchScores
    model_dir: Path
    state: state.TrainerState
    #: Whether this process is the one that wrote the results (the one to report them).
    is_main_process: bool


def train(config: TrainConfig, data: TrainingData | None = None, command: str | None = None) -> TrainResult:
    """Train, keep the generator with the best validation Dice, score it on the test split.

    ``data`` replaces the dataset named by ``config`` (tests pass small synthetic sets);
    ``command`` is recorded on the model card (default: this process's command line).
    """
    accelerator = Accelerator(
        cpu=config.cpu,
        mixed_precision=config.mixed_precision,
        log_with=_available_trackers(),
        project_dir=str(config.output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    set_seed(config.seed)
    warn_if_bfloat16_is_emulated(config.mixed_precision, accelerator.device)
    progress = not config.quiet
    # Everything that can refuse the run's inputs comes before the first write to
    # output_dir, so a refused run leaves that folder (new or a previous run's) as it was.
    checkpoint = state.latest_checkpoint(config.output_dir) if config.resume else None
    source = "the data passed to train()" if data is not None else _data_source(config)
    with accelerator.main_process_first():
        data = data or load_run_data(config, progress=progress and accelerator.is_main_process)
    _check_data(data, source)
    # every process reads the pairs (only the main one scores), so a missing ADIR folder stops
    # them all before anything is written
    benchmark = BenchmarkValidation.from_adir(config.adir_dir) if config.scores_benchmark else None

    generator = create_model(config.model, **({} if config.base_width is None else {"base_width": config.base_width}))
    start = None if config.init_from is None else _initialise_from(generator, config.init_from, widen=config.widen, seed=config.seed)
    if accelerator.is_main_process:
        config.output_dir.mkdir(parents=True, exist_ok=True)
        config.save(config.output_dir)
    discriminator = create_discriminator(base_width=config.discriminator_width) if config.gan else None
    if config.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        if discriminator is not None:
            discriminator = discriminator.to(memory_format=torch.channels_last)
    weights = inverse_frequency_weights(data.train.class_pixel_counts()) if "weighted" in config.loss else None
    segmentation_loss = create_loss(config.loss, weights).to(accelerator.device)
    generator_optimizer = _adam(generator, config.lr_generator, config)
    # A ragged last batch is dropped (its samples come back in other epochs' shuffles): some
    # baselines batch-normalise pooled features and cannot train on a batch of one.
    train_loader = DataLoader(
        training_set(data.train, config.augment, data.preprocessor, config.crop_size), batch_size=config.batch_size, shuffle=True,
        num_workers=config.num_workers, drop_last=len(data.train) > config.batch_size * accelerator.num_processes,
    )
    validation_sets = {MAIN_VALIDATION: data.validation, **data.extra_validation}
    loaders = [
        DataLoader(evaluation_set(split), batch_size=config.eval_batch_size)
        for split in (data.test, *validation_sets.values())
    ]
    generator, generator_optimizer, train_loader, test_loader, *validation_loaders = accelerator.prepare(
        generator, generator_optimizer, train_loader, *loaders
    )
    validation_loaders = dict(zip(validation_sets, validation_loaders, strict=True))
    discriminator_optimizer = None
    if discriminator is not None:
        discriminator_optimizer = _adam(discriminator, config.lr_discriminator, config)
        discriminator, discriminator_optimizer = accelerator.prepare(discriminator, discriminator_optimizer)
    step = AdversarialStep(
        accelerator, generator, generator_optimizer, segmentation_loss, discriminator,
        discriminator_optimizer, config.lambda_segmentation, config.channels_last, config.pair_naming,
        _teacher(start, config, accelerator) if config.distil_pommier else None, config.distil_pommier,
    )

    run_state = state.TrainerState()
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        run_state = state.read_state(checkpoint)
        accelerator.print(f"resuming after epoch {run_state.epochs_done} from {checkpoint}")
    accelerator.init_trackers(TRACKER_PROJECT, config=_tracker_config(config))

    def score_and_keep(epoch: int, started: float, losses: dict[str, float]) -> None:
        """Validate the generator after ``epoch``, keep it when best, log and print it."""
        validation = {
            name: evaluate(accelerator, generator, loader, f"validation {name} {epoch}", progress, data.preprocessor).means
            for name, loader in validation_loaders.items()
        }
        benchmark_dice = {}
        if benchmark is not None and accelerator.is_main_process:
            benchmark_dice = benchmark.dice(accelerator.unwrap_model(generator), data.preprocessor)
        if config.select_on == "benchmark":
            selection_dice = _from_main_process(accelerator, sum(benchmark_dice.values()) / len(benchmark_dice) if benchmark_dice else 0.0)
        else:
            selection_dice = sum(means["dice"] for means in validation.values()) / len(validation)
        if epoch == 0 and config.hold_pommier:
            run_state.main_floor = validation[MAIN_VALIDATION]["dice"]
        improved = run_state.record(epoch, selection_dice, validation[MAIN_VALIDATION]["dice"])
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(generator)
            if improved:
                publish.save_model(unwrapped, config, data.preprocessor, None, "")
            if config.keep_epoch_models:
                publish.save_model(unwrapped, config, data.preprocessor, None, "", publish.epoch_model_dir(config, epoch))
        record = {
            "epoch": epoch, "seconds": round(time.perf_counter() - started, 3), "loss": losses,
            **{_validation_key(name): means for name, means in validation.items()},
            "selection_dice": selection_dice, "best_epoch": run_state.best_epoch,
            **({BENCHMARK_KEY: benchmark_dice} if benchmark_dice else {}),
        }
        _log(accelerator, config, record)
        parts = "" if len(validation) == 1 else " (" + ", ".join(
            f"{name} {means['dice']:.4f}" for name, means in validation.items()) + ")"
        if benchmark_dice:
            parts += "; benchmark " + ", ".join(f"{name} {dice:.2f}" for name, dice in benchmark_dice.items())
        accelerator.print(
            f"epoch {epoch}{' (the starting model)' if epoch == 0 else ''}: {config.select_on} Dice {selection_dice:.4f}{parts} "
            f"(best {run_state.best_dice:.4f} at epoch {run_state.best_epoch})"
        )

    if config.init_from is not None and checkpoint is None:
        # The starting model is scored first and counts as epoch 0: a fine-tune that no
        # epoch improves keeps its start, and --hold_pommier takes its floor from it.
        score_and_keep(0, time.perf_counter(), {})
    for epoch in range(run_state.epochs_done + 1, config.epochs + 1):
        if run_state.epochs_without_improvement >= config.patience:
            break
        started = time.perf_counter()
        train_loader.set_epoch(epoch)
        losses = _train_epoch(accelerator, step, train_loader, epoch, config)
        broadcast_buffers(accelerator, generator)
        score_and_keep(epoch, started, losses)
        _save_checkpoint(accelerator, config, run_state)
    accelerator.wait_for_everyone()
    return _finish(accelerator, config, data, generator, test_loader, run_state, command or _command_line(accelerator))


def _train_epoch(
    accelerator: Accelerator, step: AdversarialStep, loader: DataLoader, epoch: int, config: TrainConfig
) -> dict[str, float]:
    """Run one epoch; returns each loss averaged over the epoch's steps and processes.

    With ``--freeze_batchnorm`` the generator's batch-norm layers normalise by the starting
    model's running statistics and do not update them (their scale and shift still learn).
    The losses stay on the device; the tracker checks them (and the progress bar shows them)
    every ``LOSS_CHECK_INTERVAL`` steps and at the end, so a NaN stops the run before the
    epoch's model is evaluated or saved.
    """
    step.generator.train()
    if config.freeze_batchnorm:
        for module in step.generator.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    if step.discriminator is not None:
        step.discriminator.train()
    tracker = LossTracker(accelerator, f"epoch {epoch}")
    batches = tqdm(
        loader, desc=f"epoch {epoch}/{config.epochs}", leave=False,
        disable=config.quiet or not accelerator.is_local_main_process,
    )
    for images, labels, *anchored in batches:
        if tracker.add(step(images, labels, *anchored)):
            batches.set_postfix(generator=f"{tracker.means['generator']:.4f}", refresh=False)
    return tracker.finish()


def _finish(
    accelerator: Accelerator, config: TrainConfig, data: TrainingData, generator: nn.Module,
    test_loader: DataLoader, run_state: state.TrainerState, command: str,
) -> TrainResult:
    """Score the best generator on the test split and leave the results on disk."""
    folder = publish.model_dir(config)
    best = amfl.hub.from_pretrained(folder)
    accelerator.unwrap_model(generator).load_state_dict(best.state_dict())
    identical = replicas_agree(accelerator, generator)
    scores = evaluate(accelerator, generator, test_loader, "test", not config.quiet, data.preprocessor)
    if accelerator.is_main_process:
        run = {
            "best_epoch": run_state.best_epoch, "epochs_trained": run_state.epochs_done,
            "best_validation_dice": run_state.best_dice, "processes": accelerator.num_processes,
            "replica_weights_identical": identical, "command": command,
            "training_composition": dict(data.composition),
        }
        publish.write_metrics(config, scores, run)
        publish.save_model(accelerator.unwrap_model(generator), config, data.preprocessor, scores, command)
        if data.facts is not None:
            publish.write_dataset_card_of_run(config, data.facts)
        if config.push_to_hub:
            export = None
            if config.hub_dataset_id and data.splits is not None and data.facts is not None:
                export = export_dataset(data.splits, data.facts, config.output_dir / "dataset")
            for url in publish.push_results(config, export):
                accelerator.print(f"pushed {url}")
    accelerator.wait_for_everyone()
    accelerator.end_training()  # last: it also shuts the process group down
    return TrainResult(scores, folder, run_state, accelerator.is_main_process)


def _save_checkpoint(accelerator: Accelerator, config: TrainConfig, run_state: state.TrainerState) -> None:
    """Accelerate's state, then (last, so its presence marks a complete checkpoint) ours."""
    folder = state.checkpoint_dir(config.output_dir, run_state.epochs_done)
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        state.write_state(folder, run_state)
        state.prune_checkpoints(config.output_dir)
    accelerator.wait_for_everyone()


def _from_main_process(accelerator: Accelerator, value: float) -> float:
    """The main process's ``value`` on every process: only it scores the benchmark, and every
    process must keep (and stop at) the same epoch."""
    if accelerator.num_processes == 1:
        return value
    return float(broadcast(torch.tensor([value], dtype=torch.float64, device=accelerator.device), from_process=0).item())


def _validation_key(name: str) -> str:
    """Log key of a validation set: ``validation`` for the main one, ``validation_<name>``."""
    return "validation" if name == MAIN_VALIDATION else f"validation_{name}"


def _log(accelerator: Accelerator, config: TrainConfig, record: dict) -> None:
    flat = {f"loss/{k}": v for k, v in record["loss"].items()}
    for key in (key for key in record if key.startswith("validation")):
        flat.update({f"{key}/{k}": v for k, v in record[key].items()})
    flat["selection_dice"] = record["selection_dice"]
    accelerator.log(flat, step=record["epoch"])
    if accelerator.is_main_process:
        with open(config.output_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


def _initialise_from(generator: nn.Module, source: str, widen: bool = False, seed: int = 0) -> nn.Module:
    """Copy a saved model's weights into ``generator`` (widened first with ``widen``), or say
    why they do not fit; returns the saved model as loaded (``--distil_pommier``'s teacher)."""
    start = pretrained = amfl.hub.from_pretrained(source)
    if type(pretrained) is not type(generator):
        raise ValueError(
            f"--init_from {source} holds a {type(pretrained).__name__}, but --model builds a "
            f"{type(generator).__name__}; pass the --model (and --base_width) it was trained as"
        )
    if widen:
        try:
            pretrained = widen_nested_unet(pretrained, getattr(generator, "base_width", 0), seed=seed)
        except (TypeError, ValueError) as error:
            raise ValueError(f"--widen cannot start from --init_from {source}: {error}") from error
    weights = pretrained.state_dict()
    misfits = amfl.hub.weight_misfits(generator, weights)
    if misfits:
        narrower = isinstance(pretrained, NestedUNet) and pretrained.base_width < getattr(generator, "base_width", 0)
        hint = " (a narrower NestedUNet can start a wider one with --widen)" if narrower and not widen else ""
        raise ValueError(f"--init_from {source} does not fit --model/--base_width: {'; '.join(misfits)}{hint}")
    generator.load_state_dict(weights)
    return start


def _teacher(start: nn.Module, config: TrainConfig, accelerator: Accelerator) -> nn.Module:
    """The starting model, frozen in eval mode on the run's device: the output that
    ``--distil_pommier`` holds the generator to (a widened start computes the same)."""
    teacher = start.to(accelerator.device).eval()
    teacher.requires_grad_(False)
    return teacher.to(memory_format=torch.channels_last) if config.channels_last else teacher


def _adam(module: nn.Module, learning_rate: float, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=learning_rate, betas=config.adam_betas)


def _data_source(config: TrainConfig) -> str:
    return f"--h5 {config.h5}" if config.h5 is not None else "the rebuilt dataset"


def _check_data(data: TrainingData, source: str) -> None:
    """Refuse data the run cannot train, select or score on; ``source`` names its origin."""
    empty = [name for name in ("train", "validation", "test") if len(getattr(data, name)) == 0]
    if empty:
        raise ValueError(
            f"{source}: no samples in the {', '.join(empty)} split(s); expected at least one in each "
            "of the paper's splits (80/20 train/test, the last 25% of train for validation; only "
            f"validation and test samples with overlap pixels, label {OVERLAP_LABEL}, are scored); check --max_samples and the data"
        )
    splits = {"train": data.train, "validation": data.validation, "test": data.test, **data.extra_validation}
    for name, split in splits.items():
        if not len(split):
            continue
        low, high = (int(value) for value in torch.aminmax(split.labels))
        if low < 0 or high >= NUM_CLASSES:
            found = f"{low}..{high}"
            hint = " (4 is the raw labels' spline overshoot: train without --raw_labels)" if high == 4 else ""
            raise ValueError(
                f"{source}: the {name} split holds labels {found}; expected labels 0..{NUM_CLASSES - 1}, "
                f"one per class of the network{hint}"
            )


def _available_trackers() -> list[str] | None:
    """TensorBoard when it is installed; the JSON-lines log is always written."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return None
    return ["tensorboard"]


def _tracker_config(config: TrainConfig) -> dict:
    return {key: value if isinstance(value, (int, float, str, bool)) else str(value) for key, value in asdict(config).items()}


def _command_line(accelerator: Accelerator) -> str:
    """How to rerun this training: CPU processes come from torchrun, GPU ones from accelerate."""
    arguments = " ".join(shlex.quote(argument) for argument in sys.argv[1:])
    processes = accelerator.num_processes
    if processes == 1:
        return f"python train_accelerate.py {arguments}"
    if accelerator.distributed_type == DistributedType.MULTI_CPU:
        return f"torchrun --standalone --nproc_per_node {processes} train_accelerate.py {arguments}"
    return f"accelerate launch --num_processes {processes} train_accelerate.py {arguments}"
