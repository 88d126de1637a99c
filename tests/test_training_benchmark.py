"""--benchmark_validation: each epoch's real-pair benchmark Dice in log.jsonl, equal to what
amfl.evaluate's scoring gives the saved epoch model, without touching the generator."""

import json

import pytest
import torch

from amfl.data.real_pairs import PAIR_KINDS
from amfl.data.sources import SourceError
from amfl.models import create_model
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import REAL_INPUTS, score_model
from amfl.segmentation import Segmenter
from amfl.training import train
from amfl.training.benchmark import BenchmarkValidation
from amfl.training.loop import BENCHMARK_KEY

from conftest import BUNDLED_MODEL, skip_without_adir
from test_training import tiny_config, tiny_data

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
