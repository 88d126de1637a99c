"""amfl.training.mixture: the ADIR sources beside the Pommier pairs (synthetic pairs with
neighbours, repeated real training windows), the real validation pairs as a second
validation set, no real test pair anywhere, and selection on the mean of both Dice values."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import amfl.hub
from amfl.data.adir import list_metaphases
from amfl.data.pairs import OverlapPairs
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.real_windows import real_windows
from amfl.preprocessing import Preprocessor
from amfl.training import TrainConfig, loop, mixture, train
from amfl.training.data import SplitTensors, TrainingData
from amfl.training.mixture import REAL_VALIDATION, add_adir_sources, uses_adir
from amfl.training.state import checkpoint_dir
from conftest import make_pairs, skip_without_adir

SYNTHETIC, REPEATS, POMMIER = 8, 2, 4


def pommier_like(train_count: int = 10, other_count: int = 4) -> TrainingData:
    """Small Pommier-like splits of bar pairs, 94 x 93 padded to 128 x 128."""
    def split(count: int, seed: int) -> SplitTensors:
        return SplitTensors.from_pairs(make_pairs(count, seed=seed), Preprocessor())

    return TrainingData(split(train_count, 0), split(other_count, 1), split(other_count, 2))


def label_keys(labels: torch.Tensor) -> set[bytes]:
    return {sample.numpy().tobytes() for sample in labels}


@pytest.fixture(scope="module")
def adir():
    """(metaphases, real pairs) of the ADIR set."""
    skip_without_adir()
    metaphases = list_metaphases()
    return metaphases, extract_real_pairs(metaphases, progress=False)


@pytest.fixture(scope="module")
def mixed(adir):
    """(Pommier-like data, it with the ADIR sources, the splits of every real pair
    ``real_windows`` was asked for)."""
    data = pommier_like()
    config = TrainConfig(synthetic_count=SYNTHETIC, real_repeats=REPEATS, pommier_train_count=POMMIER)
    asked: list[str] = []
    original = mixture.real_windows

    def spy(pairs, metaphases, *args, **kwargs):
        asked.extend(pair.cluster.split for pair in pairs)
        return original(pairs, metaphases, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mixture, "real_windows", spy)
        result = add_adir_sources(data, config, progress=False)
    return data, result, asked


def test_uses_adir_only_when_asked():
    assert not uses_adir(TrainConfig())
    assert uses_adir(TrainConfig(synthetic_count=1))
    assert uses_adir(TrainConfig(real_repeats=1))
    assert uses_adir(TrainConfig(synthetic_touching_count=1))
    assert not uses_adir(TrainConfig(pommier_train_count=5))


def test_clean_pommier_marks_only_the_pommier_pairs(adir):
    data = pommier_like()
    config = TrainConfig(synthetic_count=SYNTHETIC, real_repeats=REPEATS, pommier_train_count=POMMIER, clean_pommier=True)
    marks = add_adir_sources(data, config, progress=False).train.unaugmented
    assert marks is not None and marks.dtype == torch.bool
    assert marks[:POMMIER].all() and not marks[POMMIER:].any() and len(marks) > POMMIER


def test_distil_pommier_marks_only_the_pommier_pairs(adir):
    config = TrainConfig(real_repeats=REPEATS, pommier_train_count=POMMIER, init_from="start", distil_pommier=1.0)
    marks = add_adir_sources(pommier_like(), config, progress=False).train.anchored
    assert marks is not None and marks[:POMMIER].all() and not marks[POMMIER:].any() and len(marks) > POMMIER


def test_without_clean_pommier_no_sample_is_marked(mixed):
    _, result, _ = mixed
    assert result.train.unaugmented is not None and not result.train.unaugmented.any()


def test_clean_pommier_needs_an_adir_source():
    with pytest.raises(ValueError, match="clean_pommier"):
        TrainConfig(clean_pommier=True)
    assert TrainConfig(clean_pommier=True, real_repeats=1).clean_pommier


@pytest.mark.parametrize(
    "settings", [{"synthetic_count": -1}, {"synthetic_touching_count": -1}, {"real_repeats": -2}, {"pommier_train_count": 0}]
)
def test_bad_mixture_counts_are_refused(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        TrainConfig(**settings)


def test_the_training_split_holds_each_source_in_its_count(adir, mixed):
    _, real = adir
    data, result, _ = mixed
    real_train = len(real.select(split="train"))
    real_validation = len(real.select(split="validation"))
    assert real_train > 0 and real_validation > 0
    assert len(result.train) == POMMIER + SYNTHETIC + REPEATS * real_train
    assert dict(result.composition) == {
        "pommier": POMMIER, "synthetic_with_neighbours": SYNTHETIC,
        "real_training_windows": REPEATS * real_train, "distinct_real_training_pairs": real_train,
        "real_validation_pairs": real_validation,
    }
    assert set(result.extra_validation) == {REAL_VALIDATION}
    assert len(result.extra_validation[REAL_VALIDATION]) == real_validation
    # The first Pommier pairs lead; the Pommier validation and test splits are untouched.
    assert torch.equal(result.train.images[:POMMIER], data.train.images[:POMMIER])
    assert torch.equal(result.train.labels[:POMMIER], data.train.labels[:POMMIER])
    assert result.validation is data.validation and result.test is data.test


def test_synthetic_touching_pairs_come_raw_then_masked_without_overlap(adir):
    config = TrainConfig(synthetic_touching_count=SYNTHETIC, pommier_train_count=POMMIER)
    result = add_adir_sources(pommier_like(), config, progress=False)
    assert len(result.train) == POMMIER + 2 * SYNTHETIC
    assert result.composition["synthetic_touching_with_neighbours"] == result.composition["synthetic_touching_masked"] == SYNTHETIC
    raw, masked = (result.train.labels[POMMIER + copy * SYNTHETIC : POMMIER + (copy + 1) * SYNTHETIC] for copy in range(2))
    assert torch.equal(raw, masked)
    assert set(torch.unique(raw).tolist()) == {0, 1, 2}
    raw_images, masked_images = (result.train.images[POMMIER + copy * SYNTHETIC : POMMIER + (copy + 1) * SYNTHETIC] for copy in range(2))
    off_pair = (raw == 0).unsqueeze(1)
    assert raw_images[off_pair].any()
    # Masked: the pixels off the pair all hold the one value that a 0 preprocesses to.
    assert torch.unique(masked_images[off_pair]).numel() == 1


@pytest.mark.parametrize(
    ("option", "kind", "key", "masked"),
    [("touching_repeats", "touching", "extra_touching_windows", False),
     ("masked_overlapping_repeats", "overlapping", "extra_masked_overlapping_windows", True)],
)
def test_kind_repeats_add_only_the_training_pairs_of_that_kind_again(adir, option, kind, key, masked):
    metaphases, real = adir
    config = TrainConfig(real_repeats=1, pommier_train_count=POMMIER, **{option: REPEATS})
    result = add_adir_sources(pommier_like(), config, progress=False)
    train_pairs = real.select(split="train")
    of_kind = real.select(split="train", kind=kind)
    assert 0 < len(of_kind) < len(train_pairs)
    assert len(result.train) == POMMIER + len(train_pairs) + REPEATS * len(of_kind)
    assert result.composition[key] == REPEATS * len(of_kind)
    windows = real_windows(of_kind, metaphases)
    expected = SplitTensors.from_pairs(mixture.masked_windows(windows) if masked else windows, Preprocessor())
    added_images = result.train.images[POMMIER + len(train_pairs):]
    added_labels = result.train.labels[POMMIER + len(train_pairs):]
    for copy in range(REPEATS):
        rows = slice(copy * len(of_kind), (copy + 1) * len(of_kind))
        assert torch.equal(added_images[rows], expected.images)
        assert torch.equal(added_labels[rows], expected.labels)


@pytest.mark.parametrize("name", ["touching_repeats", "masked_repeats", "masked_overlapping_repeats"])
def test_repeats_of_real_pairs_need_the_real_pairs(name):
    with pytest.raises(ValueError, match=f"--{name} adds .* it needs --real_repeats"):
        TrainConfig(**{name: 2})
    with pytest.raises(ValueError, match=name):
        TrainConfig(real_repeats=1, **{name: -1})


def test_masked_repeats_add_every_training_window_again_with_only_the_pair_lit(adir):
    metaphases, real = adir
    config = TrainConfig(real_repeats=1, masked_repeats=REPEATS, pommier_train_count=POMMIER)
    result = add_adir_sources(pommier_like(), config, progress=False)
    train_pairs = real.select(split="train")
    assert len(result.train) == POMMIER + (1 + REPEATS) * len(train_pairs)
    assert result.composition["masked_windows"] == REPEATS * len(train_pairs)
    windows = real_windows(train_pairs, metaphases)
    masked = mixture.masked_windows(windows)
    assert np.array_equal(masked.labels, windows.labels)
    assert not masked.images[windows.labels == 0].any()
    assert np.array_equal(masked.images[windows.labels > 0], windows.images[windows.labels > 0])
    assert windows.images[windows.labels == 0].any()
    expected = SplitTensors.from_pairs(masked, Preprocessor())
    added = result.train.images[POMMIER + len(train_pairs):]
    for copy in range(REPEATS):
        assert torch.equal(added[copy * len(train_pairs) : (copy + 1) * len(train_pairs)], expected.images)


def test_every_added_sample_is_network_ready(mixed):
    _, result, _ = mixed
    for split in (result.train, result.extra_validation[REAL_VALIDATION]):
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.images.shape[1:] == (1, 128, 128) and split.labels.shape[1:] == (128, 128)
        assert float(split.images.min()) >= 0 and float(split.images.max()) <= 1
        assert torch.allclose(split.images.amax(dim=(1, 2, 3)), torch.ones(len(split)))  # per-image max 1
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) <= 3
    synthetic = result.train.labels[POMMIER : POMMIER + SYNTHETIC]
    assert all((labels == 3).any() for labels in synthetic), "a synthetic pair without overlap"


def test_the_real_training_windows_are_repeated_identically(adir, mixed):
    metaphases, real = adir
    _, result, _ = mixed
    count = len(real.select(split="train"))
    start = POMMIER + SYNTHETIC
    first = slice(start, start + count)
    second = slice(start + count, start + 2 * count)
    assert torch.equal(result.train.images[first], result.train.images[second])
    assert torch.equal(result.train.labels[first], result.train.labels[second])
    expected = SplitTensors.from_pairs(real_windows(real.select(split="train"), metaphases), Preprocessor())
    assert torch.equal(result.train.labels[first], expected.labels)
    assert torch.allclose(result.train.images[first], expected.images)


def test_the_real_validation_set_is_the_validation_split_windows(adir, mixed):
    metaphases, real = adir
    _, result, _ = mixed
    expected = SplitTensors.from_pairs(real_windows(real.select(split="validation"), metaphases), Preprocessor())
    assert torch.equal(result.extra_validation[REAL_VALIDATION].labels, expected.labels)
    assert torch.allclose(result.extra_validation[REAL_VALIDATION].images, expected.images)


def test_no_real_test_pair_reaches_training_or_validation(adir, mixed):
    metaphases, real = adir
    _, result, asked = mixed
    assert set(asked) == {"train", "validation"}, f"real_windows was asked for pairs of {sorted(set(asked))}"
    test_windows = real_windows(real.select(split="test"), metaphases)
    test_keys = label_keys(torch.from_numpy(test_windows.labels.astype(np.int64)))
    assert len(test_keys) == len(test_windows)  # distinct, so the check below can tell them apart
    seen = label_keys(result.train.labels) | label_keys(result.extra_validation[REAL_VALIDATION].labels)
    assert not test_keys & seen, f"{len(test_keys & seen)} real test pairs in the training or validation data"


def tiny_config(tmp_path, epochs: int) -> TrainConfig:
    return TrainConfig(
        model="amfl-small", base_width=4, discriminator_width=8, batch_size=8, epochs=epochs, quiet=True,
        output_dir=tmp_path, cpu=True,
    )


def with_real_validation() -> TrainingData:
    """Pommier-like splits, and as the second validation set bar pairs twice as large (so
    the two sets' Dice differ even for a model that has learnt nothing yet)."""
    data = pommier_like(train_count=16, other_count=8)
    small = make_pairs(8, seed=5, shape=(64, 64))
    twice = np.ones((2, 2), np.uint8)
    large = OverlapPairs(np.kron(small.images, twice.astype(small.images.dtype)), np.kron(small.labels, twice))
    real = SplitTensors.from_pairs(large, Preprocessor())
    return TrainingData(data.train, data.validation, data.test, extra_validation={REAL_VALIDATION: real},
                        composition={"pommier": len(data.train)})


def test_a_run_logs_both_validation_sets_and_selects_on_their_mean(tmp_path):
    """Two tiny epochs with a second validation set: both logged, ``selection_dice`` their
    mean, the epoch kept the best of that mean."""
    data = with_real_validation()
    result = train(tiny_config(tmp_path, 2), data=data, command="python train_accelerate.py --tiny")
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    for record in log:
        assert isinstance(record["validation"], dict) and isinstance(record["validation_real"], dict)
        assert record["validation"]["dice"] != pytest.approx(record["validation_real"]["dice"])
        mean = (record["validation"]["dice"] + record["validation_real"]["dice"]) / 2
        assert record["selection_dice"] == pytest.approx(mean)
    best = max(log, key=lambda record: record["selection_dice"])  # the first of equals, as the loop keeps
    assert log[-1]["best_epoch"] == best["epoch"] == result.state.best_epoch
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["best_epoch"] == best["epoch"]
    assert metrics["best_validation_dice"] == pytest.approx(best["selection_dice"])
    assert metrics["training_composition"] == {"pommier": len(data.train)}


def script_validation(monkeypatch, dice_of) -> None:
    """Make the loop's validation Dice ``dice_of(set name, epoch)``; test scores stay real."""
    real_evaluate = loop.evaluate

    def scripted(accelerator, generator, loader, description, progress, naming):
        scores = real_evaluate(accelerator, generator, loader, description, progress, naming)
        if not description.startswith("validation "):
            return scores
        _, name, epoch = description.split()
        return SimpleNamespace(means={**scores.means, "dice": dice_of(name, int(epoch))})

    monkeypatch.setattr(loop, "evaluate", scripted)


#: Validation Dice per set and epoch for the run below: the best mean (epoch 2) is neither
#: the best of the Pommier validation (epoch 1) nor of the real one (epoch 3).
SCRIPTED_DICE = {"validation": [60.0, 55.0, 30.0], REAL_VALIDATION: [30.0, 70.0, 75.0]}


def test_the_epoch_kept_is_the_best_mean_not_the_best_of_one_set(tmp_path, monkeypatch):
    """With the validation Dice scripted, the run keeps epoch 2 (means 45, 62.5, 52.5): its
    log, metrics and the saved model's weights are epoch 2's."""
    script_validation(monkeypatch, lambda name, epoch: SCRIPTED_DICE[name][epoch - 1])
    result = train(tiny_config(tmp_path, 3), data=with_real_validation(), command="python train_accelerate.py --tiny")
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["selection_dice"] for record in log] == [45.0, 62.5, 52.5]
    assert [record["best_epoch"] for record in log] == [1, 2, 2]
    assert [record["validation_real"]["dice"] for record in log] == SCRIPTED_DICE[REAL_VALIDATION]
    assert json.loads((tmp_path / "metrics.json").read_text())["best_epoch"] == 2
    kept = amfl.hub.from_pretrained(result.model_dir).state_dict()
    for epoch, same in ((2, True), (3, False)):
        saved = load_file(checkpoint_dir(tmp_path, epoch) / "model.safetensors")
        assert all(torch.equal(kept[key], saved[key]) for key in saved) is same, f"kept model vs epoch {epoch}"


#: Scripted validation Dice of a fine-tune, epochs 0 (the starting model) to 2: epoch 1 has the
#: best mean but a Pommier Dice below the start's; epoch 2 holds it.
FINE_TUNE_DICE = {"validation": [60.0, 55.0, 61.0], REAL_VALIDATION: [30.0, 70.0, 50.0]}


@pytest.mark.parametrize(("hold", "kept"), [(False, 1), (True, 2)])
def test_a_fine_tune_scores_its_start_as_epoch_0_and_hold_pommier_keeps_its_pommier_dice(tmp_path, monkeypatch, hold, kept):
    data = with_real_validation()
    start = train(tiny_config(tmp_path / "start", 1), data=data, command="python train_accelerate.py --tiny").model_dir
    script_validation(monkeypatch, lambda name, epoch: FINE_TUNE_DICE[name][epoch])
    config = dataclasses.replace(tiny_config(tmp_path / "tune", 2), init_from=str(start), hold_pommier=hold)
    result = train(config, data=data, command="python train_accelerate.py --tiny")
    log = [json.loads(line) for line in (tmp_path / "tune" / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [0, 1, 2]
    assert log[0]["loss"] == {} and log[0]["selection_dice"] == pytest.approx(45.0)
    assert result.state.best_epoch == kept and [record["best_epoch"] for record in log][-1] == kept
    assert result.state.main_floor == (pytest.approx(60.0) if hold else None)


def test_a_fine_tune_that_no_epoch_improves_keeps_the_starting_weights(tmp_path, monkeypatch):
    data = with_real_validation()
    start = train(tiny_config(tmp_path / "start", 1), data=data, command="python train_accelerate.py --tiny").model_dir
    script_validation(monkeypatch, lambda name, epoch: 90.0 if epoch == 0 else 10.0)
    config = dataclasses.replace(tiny_config(tmp_path / "tune", 2), init_from=str(start), lr_generator=1e-2)
    result = train(config, data=data, command="python train_accelerate.py --tiny")
    assert result.state.best_epoch == 0
    started, kept = amfl.hub.from_pretrained(start).state_dict(), amfl.hub.from_pretrained(result.model_dir).state_dict()
    assert all(torch.equal(started[key], kept[key]) for key in started)


def test_hold_pommier_needs_init_from():
    with pytest.raises(ValueError, match="hold_pommier"):
        TrainConfig(hold_pommier=True)


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_batchnorm_keeps_the_starting_running_statistics(tmp_path, freeze):
    data = with_real_validation()
    start = train(tiny_config(tmp_path / "start", 1), data=data, command="python train_accelerate.py --tiny").model_dir
    config = dataclasses.replace(tiny_config(tmp_path / "tune", 1), init_from=str(start), freeze_batchnorm=freeze, lr_generator=1e-2)
    train(config, data=data, command="python train_accelerate.py --tiny")
    before = amfl.hub.from_pretrained(start).state_dict()
    after = load_file(checkpoint_dir(tmp_path / "tune", 1) / "model.safetensors")
    statistics = [key for key in before if key.endswith(("running_mean", "running_var"))]
    affine = [key for key in before if key.endswith(".weight")]
    assert statistics and affine
    assert all(torch.equal(before[key], after[key]) for key in statistics) is freeze
    assert not all(torch.equal(before[key], after[key]) for key in affine), "the weights did not train"


def test_freeze_batchnorm_needs_init_from():
    with pytest.raises(ValueError, match="freeze_batchnorm"):
        TrainConfig(freeze_batchnorm=True)
