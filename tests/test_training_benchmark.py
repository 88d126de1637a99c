"""--benchmark_validation: each epoch's real-pair benchmark Dice in log.jsonl, equal to what
amfl.evaluate's scoring gives the saved epoch model, without touching the generator; and
--select_on benchmark: the epoch kept is the one with the best mean of those four Dice."""

import dataclasses
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

import amfl.hub
from amfl.data.real_pairs import PAIR_KINDS
from amfl.data.sources import SourceError
from amfl.models import create_model
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import REAL_INPUTS, score_model
from amfl.segmentation import Segmenter
from amfl.training import loop, parse_config, train
from amfl.training.benchmark import BenchmarkValidation
from amfl.training.loop import BENCHMARK_KEY
from amfl.training.state import checkpoint_dir

from conftest import BUNDLED_MODEL, skip_without_adir
from test_training import REPO, tiny_config, tiny_data
from test_training_mixture import pommier_like, script_validation
from test_training_mixture import tiny_config as mixture_config

KEYS = {f"{kind}_{source}" for kind in PAIR_KINDS for source in REAL_INPUTS}


@pytest.fixture(scope="module")
def benchmark() -> BenchmarkValidation:
    skip_without_adir()
    return BenchmarkValidation.from_adir()


def test_the_benchmark_holds_validation_pairs_of_both_kinds_only(benchmark):
    assert {pair.cluster.kind for pair in benchmark.pairs} == set(PAIR_KINDS)
    assert {pair.cluster.split for pair in benchmark.pairs} == {"validation"}


def test_scoring_leaves_the_generator_as_it_was(benchmark):
    generator = create_model("amfl-small", base_width=4).train()
    before = {key: value.clone() for key, value in generator.state_dict().items()}
    modules = [type(module) for module in generator.modules()]
    dice = benchmark.dice(generator, Preprocessor())
    assert set(dice) == KEYS and all(0 <= value <= 100 for value in dice.values())
    assert generator.training
    assert [type(module) for module in generator.modules()] == modules  # no folded norms, no tiling layers
    assert all(torch.equal(value, before[key]) for key, value in generator.state_dict().items())


def test_no_pairs_is_a_clear_error():
    with pytest.raises(ValueError, match="no validation pairs"):
        BenchmarkValidation([])


def test_each_epoch_logs_the_scores_amfl_evaluate_gives_its_saved_model(tmp_path, training_h5, benchmark):
    # from the bundled model, whose output steps the run keeps and whose scores one epoch moves
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "1", "--no-gan", "--keep_epoch_models",
                         "--base_width", "16", "--benchmark_validation", "--init_from", str(BUNDLED_MODEL))
    train(config, tiny_data(config))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [0, 1]
    for record in log:
        saved = tmp_path / "run" / "epoch_models" / f"epoch_{record['epoch']:04d}"
        rows = score_model("saved", Segmenter.from_pretrained(saved), benchmark.pairs)
        assert record[BENCHMARK_KEY] == {f"{row.kind}_{row.input}": row.means["dice"] for row in rows}
    assert log[0][BENCHMARK_KEY] != log[1][BENCHMARK_KEY]


def test_without_the_flag_nothing_is_scored(tmp_path, training_h5):
    config = tiny_config(tmp_path, training_h5, "--epochs", "1", "--no-gan")
    train(config, tiny_data(config))
    record = json.loads((tmp_path / "log.jsonl").read_text())
    assert BENCHMARK_KEY not in record


def test_a_missing_adir_folder_refuses_the_run_before_anything_is_written(tmp_path, training_h5):
    config = tiny_config(tmp_path / "run", training_h5, "--benchmark_validation", "--adir_dir", str(tmp_path / "nowhere"))
    with pytest.raises(SourceError, match="holds no SHA256SUMS"):
        train(config, tiny_data(config))
    assert not (tmp_path / "run").exists()


class ScriptedBenchmark:
    """Stands in for the ADIR pairs: each call's four Dice (one per kind and input) have the
    next scripted mean, spread around it so that no single one of them is the mean."""

    def __init__(self, means: list[float]) -> None:
        self.means = iter(means)

    def dice(self, generator, preprocessor) -> dict[str, float]:
        mean = next(self.means)
        return {key: mean + offset for key, offset in zip(sorted(KEYS), (-3.0, -1.0, 1.0, 3.0), strict=True)}


def script_benchmark(monkeypatch, means: list[float]) -> None:
    monkeypatch.setattr(loop, "BenchmarkValidation", SimpleNamespace(from_adir=lambda folder: ScriptedBenchmark(means)))


def test_select_on_benchmark_keeps_the_epoch_with_the_best_benchmark_mean(tmp_path, monkeypatch):
    """The run's own validation rises every epoch; the benchmark's mean is best at epoch 2,
    which is kept (log, metrics and weights), without --benchmark_validation given."""
    script_validation(monkeypatch, lambda name, epoch: 10.0 * epoch)
    script_benchmark(monkeypatch, [50.0, 70.0, 60.0])
    config = dataclasses.replace(mixture_config(tmp_path, 3), select_on="benchmark")
    result = train(config, data=pommier_like(), command="python train_accelerate.py --tiny")
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["selection_dice"] for record in log] == [50.0, 70.0, 60.0]
    assert [record["validation"]["dice"] for record in log] == [10.0, 20.0, 30.0]
    assert all(set(record[BENCHMARK_KEY]) == KEYS for record in log)
    assert [record["best_epoch"] for record in log] == [1, 2, 2]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["best_validation_dice"]) == (2, 70.0)
    kept = amfl.hub.from_pretrained(result.model_dir).state_dict()
    for epoch, same in ((2, True), (3, False)):
        saved = load_file(checkpoint_dir(tmp_path, epoch) / "model.safetensors")
        assert all(torch.equal(kept[key], saved[key]) for key in saved) is same, f"kept model vs epoch {epoch}"


@pytest.mark.parametrize(("hold", "kept"), [(False, 1), (True, 2)])
def test_hold_pommier_still_holds_when_selecting_on_the_benchmark(tmp_path, monkeypatch, hold, kept):
    """Epoch 1 has the best benchmark mean but a Pommier validation Dice below the start's."""
    data = pommier_like()
    start = train(mixture_config(tmp_path / "start", 1), data=data, command="python train_accelerate.py --tiny").model_dir
    script_validation(monkeypatch, lambda name, epoch: [60.0, 55.0, 61.0][epoch])
    script_benchmark(monkeypatch, [40.0, 80.0, 60.0])
    config = dataclasses.replace(mixture_config(tmp_path / "tune", 2), init_from=str(start), hold_pommier=hold, select_on="benchmark")
    result = train(config, data=data, command="python train_accelerate.py --tiny")
    assert result.state.best_epoch == kept
    assert result.state.best_dice == {1: 80.0, 2: 60.0}[kept]


def test_select_on_only_takes_the_known_choices():
    with pytest.raises(SystemExit):
        parse_config(["--select_on", "windows"])


#: Run under torchrun: each process passes its own value and writes what it got back to a file
#: of its own (prints from two processes can interleave on one pipe), then shuts the process
#: group down as the trainer does (left to interpreter exit, it can abort).
BROADCAST_SCRIPT = """
import pathlib, sys
from accelerate import Accelerator
from amfl.training.loop import _from_main_process
accelerator = Accelerator(cpu=True)
got = _from_main_process(accelerator, 42.5 if accelerator.is_main_process else 0.0)
pathlib.Path(sys.argv[1], f"rank{accelerator.process_index}.txt").write_text(str(got))
accelerator.wait_for_everyone()
accelerator.end_training()
"""


def test_every_process_gets_the_main_process_selection_value(tmp_path):
    script = tmp_path / "broadcast.py"
    script.write_text(BROADCAST_SCRIPT)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run([*launcher, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)] == ["42.5", "42.5"]
