"""The Accelerate trainer: paper defaults, a tiny end-to-end run, resume, divergence,
two processes, and an offline push."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from torch.utils.data import DataLoader

import amfl.hub
from amfl.data.dataset import load_pairs
from amfl.data.protocol import OVERLAP_LABEL, split_pairs
from amfl.metrics import METRIC_NAMES
from amfl.models import create_model
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.scoring import evaluate
from amfl.training import NonFiniteLossError, TrainConfig, parse_config, train
from amfl.training.data import SplitTensors, TrainingData, evaluation_set, from_splits
from amfl.training.state import TrainerState, complete_checkpoints
from amfl.training.step import LossTracker

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", "amfl-small", "--base_width", "4", "--discriminator_width", "8",
        "--batch_size", "8", "--max_samples", "24", "--quiet"]


def tiny_config(tmp_path: Path, h5: Path, *extra: str) -> TrainConfig:
    return parse_config([*TINY, "--h5", str(h5), "--output_dir", str(tmp_path), *extra])


def tiny_data(config: TrainConfig) -> TrainingData:
    return from_splits(split_pairs(load_pairs(config.h5, progress=False), seed=config.seed), config)


def run_cli(arguments: list[str], launcher: list[str] | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), str(REPO / "train_accelerate.py"), *arguments]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def test_defaults_are_the_papers():
    config = parse_config([])
    assert (config.model, config.loss, config.gan, config.lambda_segmentation) == ("amfl-paper", "lovasz", True, 10.0)
    assert (config.lr_generator, config.lr_discriminator, config.adam_betas) == (2e-4, 2e-4, (0.5, 0.999))
    assert (config.batch_size, config.seed, config.patience, config.augment) == (64, 123, 15, [])


def test_bad_options_are_refused_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--push_to_hub"])
    assert exit_info.value.code == 2
    assert "--hub_model_id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(["--loss", "focal"])


def test_trainer_state_counts_epochs_without_improvement():
    state = TrainerState()
    assert state.record(1, 50.0) and state.best_epoch == 1
    assert not state.record(2, 49.0) and state.epochs_without_improvement == 1
    assert state.record(3, 60.0) and (state.best_epoch, state.epochs_without_improvement) == (3, 0)


def test_trainer_state_with_a_main_floor_never_keeps_an_epoch_below_it():
    state = TrainerState(main_floor=80.0)
    assert state.record(0, 50.0, main_dice=80.0) and state.best_epoch == 0
    assert not state.record(1, 70.0, main_dice=79.9) and state.epochs_without_improvement == 1
    assert state.record(2, 60.0, main_dice=81.0) and state.best_epoch == 2


def test_tiny_run_leaves_a_loadable_model_and_the_eight_metrics(tmp_path, training_h5):
    config = tiny_config(tmp_path, training_h5, "--epochs", "2", "--augment", "flips", "rot90", "jitter",
                         "--channels_last")
    result = train(config, command="python train_accelerate.py --tiny")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(METRIC_NAMES) <= set(metrics["metrics"]) and metrics["images"] == 24
    assert metrics["epochs_trained"] == 2 and metrics["processes"] == 1
    assert np.array(metrics["confusion_matrix"]["rows_true_columns_predicted"]).sum() == 24 * 128 * 128
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    assert {"discriminator", "adversarial", "segmentation", "generator"} <= set(log[0]["loss"])
    model = amfl.hub.from_pretrained(result.model_dir)
    assert model.base_width == 4
    card = (result.model_dir / "README.md").read_text()
    assert "python train_accelerate.py --tiny" in card and f"{metrics['metrics']['dice']:.4f}" in card
    assert "## Preprocessing and output steps" in card and '| `background` | `"border_median"` |' in card
    assert json.loads((result.model_dir / "training_config.json").read_text())["epochs"] == 2
    assert "\n300 greyscale images" in (tmp_path / "dataset_card" / "README.md").read_text()  # measured counts
    assert len(complete_checkpoints(tmp_path)) == 2
    assert list((tmp_path / "amfl").glob("events.out.tfevents.*")), "TensorBoard tracker wrote no events"


def test_validation_like_the_test_holds_only_the_samples_with_overlap(tmp_path, training_h5):
    config = tiny_config(tmp_path, training_h5, "--max_samples", "300")
    splits = split_pairs(load_pairs(config.h5, progress=False), seed=config.seed)
    data = from_splits(splits, config)
    assert len(splits.validation_scored) < len(splits.validation), "this data should hold validation samples without overlap"
    for split, scored in ((data.validation, splits.validation_scored), (data.test, splits.test_scored)):
        assert len(split) == len(scored)
        assert bool((split.labels == OVERLAP_LABEL).flatten(1).any(1).all())


def test_generator_alone_trains_with_a_weighted_loss(tmp_path, training_h5):
    config = tiny_config(tmp_path, training_h5, "--epochs", "1", "--no-gan", "--loss", "weighted_dice")
    train(config)
    log = json.loads((tmp_path / "log.jsonl").read_text())
    assert set(log["loss"]) == {"segmentation", "generator"}


def test_a_run_on_random_crops_records_the_size_and_a_size_the_model_cannot_take_is_refused(tmp_path, training_h5, capsys):
    config = tiny_config(tmp_path, training_h5, "--epochs", "1", "--no-gan", "--crop_size", "64")
    train(config)
    assert json.loads((tmp_path / "training_config.json").read_text())["crop_size"] == 64
    assert "dice" in json.loads((tmp_path / "log.jsonl").read_text())["validation"]
    # Refused when the options are read, before any data is loaded or anything is written.
    with pytest.raises(SystemExit) as exit_info:
        tiny_config(tmp_path / "bad", training_h5, "--crop_size", "72")
    assert exit_info.value.code == 2
    assert "crop_size 72 is not a multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_resume_continues_at_the_next_epoch_with_the_same_state(tmp_path, training_h5):
    straight = tiny_config(tmp_path / "straight", training_h5, "--epochs", "2")
    data = tiny_data(straight)
    train(straight, data)
    interrupted = tiny_config(tmp_path / "resumed", training_h5, "--epochs", "1")
    train(interrupted, data)
    resumed = tiny_config(tmp_path / "resumed", training_h5, "--epochs", "2", "--resume")
    train(resumed, data)
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    for name in ("model.safetensors", "model_1.safetensors"):
        expected = load_file(tmp_path / "straight" / "checkpoints" / "epoch_0002" / name)
        actual = load_file(tmp_path / "resumed" / "checkpoints" / "epoch_0002" / name)
        assert all(torch.equal(expected[key], actual[key]) for key in expected), name


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, training_h5):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        train(tiny_config(tmp_path, training_h5, "--resume"))


def test_init_from_starts_the_generator_from_a_saved_model(tmp_path, training_h5):
    saved = create_model("amfl-small", base_width=4)
    saved.save_pretrained(tmp_path / "pretrained")
    # With a learning rate of 0 the weights stay where --init_from put them.
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "1", "--lr_generator", "0",
                         "--init_from", str(tmp_path / "pretrained"))
    result = train(config, tiny_data(config))
    trained = amfl.hub.from_pretrained(result.model_dir).state_dict()
    expected = saved.state_dict()
    convolutions = [key for key, value in expected.items() if value.dim() == 4]
    assert convolutions and all(torch.equal(trained[key], expected[key]) for key in convolutions)


def test_keep_epoch_models_saves_the_start_and_every_epoch_as_a_model_folder(tmp_path, training_h5):
    saved = create_model("amfl-small", base_width=4)
    saved.save_pretrained(tmp_path / "pretrained")
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "2", "--keep_epoch_models",
                         "--init_from", str(tmp_path / "pretrained"))
    train(config, tiny_data(config))
    folders = sorted(path.name for path in (tmp_path / "run" / "epoch_models").iterdir())
    assert folders == ["epoch_0000", "epoch_0001", "epoch_0002"]
    start = amfl.hub.from_pretrained(tmp_path / "run" / "epoch_models" / "epoch_0000").state_dict()
    assert all(torch.equal(start[key], value) for key, value in saved.state_dict().items() if value.dim() == 4)
    last = amfl.hub.from_pretrained(tmp_path / "run" / "epoch_models" / "epoch_0002").state_dict()
    checkpoint = load_file(tmp_path / "run" / "checkpoints" / "epoch_0002" / "model.safetensors")
    assert set(last) == set(checkpoint) and all(torch.equal(last[key], checkpoint[key]) for key in checkpoint)
    assert not torch.equal(last["head.weight"], start["head.weight"])
    assert (tmp_path / "run" / "epoch_models" / "epoch_0001" / PREPROCESSOR_FILE).is_file()
    plain = tiny_config(tmp_path / "plain", training_h5, "--epochs", "1")
    train(plain, tiny_data(plain))
    assert not (tmp_path / "plain" / "epoch_models").exists()


def test_init_from_keeps_the_starting_models_preprocessing(tmp_path, training_h5):
    create_model("amfl-small", base_width=4).save_pretrained(tmp_path / "pretrained")
    Preprocessor(pad_value=255).save(tmp_path / "pretrained")
    mismatched = tiny_config(tmp_path / "run", training_h5, "--init_from", str(tmp_path / "pretrained"))
    with pytest.raises(ValueError, match="trained with image pad value 255 .* pass --image_pad_value 255"):
        tiny_data(mismatched)
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "1", "--image_pad_value", "255",
                         "--init_from", str(tmp_path / "pretrained"))
    result = train(config, tiny_data(config))
    assert Preprocessor.read(result.model_dir / PREPROCESSOR_FILE) == Preprocessor(pad_value=255)


def test_init_from_a_model_of_another_size_is_a_clear_error(tmp_path, training_h5):
    create_model("amfl-small", base_width=8).save_pretrained(tmp_path / "wider")
    config = tiny_config(tmp_path / "run", training_h5, "--init_from", str(tmp_path / "wider"))
    with pytest.raises(ValueError, match=r"does not fit --model/--base_width: shape mismatches: head.weight \(file \(4, 8, 1, 1\), model \(4, 4, 1, 1\)\).* and \d+ more$"):
        train(config, tiny_data(config))


def test_widen_starts_a_wider_generator_computing_what_the_narrow_one_did(tmp_path, training_h5):
    narrow = create_model("amfl-small", base_width=2).eval()
    narrow.save_pretrained(tmp_path / "narrow")
    plain = tiny_config(tmp_path / "plain", training_h5, "--init_from", str(tmp_path / "narrow"))
    with pytest.raises(ValueError, match=r"does not fit .* with --widen\)$"):
        train(plain, tiny_data(plain))
    # Learning rate 0 and frozen statistics: the kept model is the widened start itself.
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "1", "--lr_generator", "0", "--freeze_batchnorm",
                         "--widen", "--init_from", str(tmp_path / "narrow"))
    result = train(config, tiny_data(config))
    wide = amfl.hub.from_pretrained(result.model_dir).eval()
    assert wide.base_width == 4
    narrower = tiny_config(tmp_path / "narrower", training_h5, "--base_width", "1", "--widen", "--init_from", str(tmp_path / "narrow"))
    with pytest.raises(ValueError, match="--widen cannot start from .* base width 2 to the smaller 1"):
        train(narrower, tiny_data(narrower))
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide(images), narrow(images), rtol=1e-4, atol=1e-4)


def test_widen_needs_a_base_width_and_a_start(capsys):
    for arguments in (["--widen", "--init_from", "somewhere"], ["--widen", "--base_width", "16"]):
        with pytest.raises(SystemExit):
            parse_config(arguments)
    assert "--widen needs --base_width" in capsys.readouterr().err


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, training_h5):
    config = tiny_config(tmp_path, training_h5, "--epochs", "1")
    data = tiny_data(config)
    poisoned = data.train.images.clone()
    poisoned[0, 0, 60, 60] = float("nan")
    data = TrainingData(SplitTensors(poisoned, data.train.labels), data.validation, data.test)
    with pytest.raises(NonFiniteLossError, match="NaN or infinite on at least one process in epoch 1, steps 1-"):
        train(config, data)
    assert not (tmp_path / "model").exists() and not complete_checkpoints(tmp_path)


def finite_losses(value: float) -> dict[str, torch.Tensor]:
    return {"generator": torch.tensor(value), "segmentation": torch.tensor(value / 10)}


def test_loss_tracker_checks_every_interval_and_names_the_loss_and_steps():
    tracker = LossTracker(Accelerator(cpu=True), "epoch 7", interval=3)
    assert not tracker.add(finite_losses(1.0)) and not tracker.add(finite_losses(2.0))
    assert tracker.add(finite_losses(3.0)) and tracker.means == pytest.approx({"generator": 2.0, "segmentation": 0.2})
    tracker.add({"generator": torch.tensor(float("inf")), "segmentation": torch.tensor(0.1)})
    with pytest.raises(NonFiniteLossError, match=r"^the generator loss became NaN or infinite .* epoch 7, steps 4-4;"):
        tracker.finish()


def test_loss_tracker_catches_a_nan_between_two_checks():
    tracker = LossTracker(Accelerator(cpu=True), "epoch 1", interval=4)
    tracker.add(finite_losses(1.0))
    assert not tracker.add(finite_losses(float("nan")))  # no check yet: no host sync
    tracker.add(finite_losses(1.0))
    with pytest.raises(NonFiniteLossError, match="the generator, segmentation losses became .* steps 1-4;"):
        tracker.add(finite_losses(1.0))


def test_offline_push_fails_clearly_and_keeps_the_results(tmp_path, training_h5):
    arguments = [*TINY, "--h5", str(training_h5), "--output_dir", str(tmp_path), "--epochs", "1",
                 "--push_to_hub", "--hub_model_id", "someone/amfl-test"]
    result = run_cli(arguments, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1, result.stderr
    assert "could not push to the Hub model someone/amfl-test" in result.stderr
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "model" / "model.safetensors").is_file()


def test_two_processes_agree_and_match_a_single_process_evaluation(tmp_path, training_h5):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = run_cli([*TINY, "--cpu", "--h5", str(training_h5), "--output_dir", str(tmp_path), "--epochs", "2"], launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["replica_weights_identical"] is True

    config = tiny_config(tmp_path, training_h5)
    accelerator = Accelerator(cpu=True)
    model = amfl.hub.from_pretrained(tmp_path / "model")
    loader = DataLoader(evaluation_set(tiny_data(config).test), batch_size=5)
    alone = evaluate(accelerator, model, loader, "test", progress=False).summary()
    assert alone == pytest.approx(metrics["metrics"], rel=1e-9)
