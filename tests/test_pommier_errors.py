"""The Pommier comparison counts left-out classes, scores each class and spreads the per-pair
differences correctly, and its command runs on a small rebuild."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from amfl.metrics import score_batch
from amfl.naming import swap_names
from amfl.pommier_errors import class_rows, difference_rows, main, missed_classes, outcome_rows, parse_args, spread_row

REPO = Path(__file__).resolve().parents[1]


def _truths() -> np.ndarray:
    """Two 8 x 8 truths, each with both chromosomes and an overlap."""
    truth = np.zeros((8, 8), np.uint8)
    truth[1:7, 1:3] = 1
    truth[1:7, 4:6] = 2
    truth[3:5, 1:6] = 3
    return np.stack([truth, truth])


def test_missed_classes_count_pairs_whose_prediction_leaves_out_a_truth_class():
    truths = _truths()
    predicted = truths.copy()
    predicted[0][predicted[0] == 3] = 1  # the first pair's overlap called chromosome 1
    assert missed_classes(predicted, truths).tolist() == [0, 0, 0, 1]
    assert missed_classes(truths, truths).tolist() == [0, 0, 0, 0]


def test_class_rows_put_a_lost_overlap_on_the_overlap_class():
    truths = _truths()
    predicted = truths.copy()
    predicted[0][predicted[0] == 3] = 1
    scores, against = score_batch(predicted, truths), score_batch(truths, truths)
    missed, missed_against = missed_classes(predicted, truths), missed_classes(truths, truths)
    rows = {row["class"]: row for row in class_rows(scores, against, missed, missed_against)}
    assert rows["overlap"]["Dice difference"] == pytest.approx(-50.0)  # 0 in one pair of two, 100 in the other
    assert rows["overlap"]["Hausdorff difference"] == pytest.approx(np.hypot(7, 7) / 2)
    assert rows["overlap"]["pairs missing it"] == 1 and rows["overlap"]["pairs missing it against"] == 0
    assert rows["chromosome 2"]["Dice difference"] == 0.0
    assert rows["chromosome 1"]["Dice difference"] < 0


def test_outcome_rows_share_each_outcome_of_the_truth_chromosome_pixels():
    truths = _truths()
    predicted = truths.copy()
    predicted[truths == 1] = 0
    rows = outcome_rows({"a": predicted, "b": truths}, truths)
    chromosome = (truths > 0).sum()
    assert rows[0]["model"] == "a" and rows[0]["missed"] == pytest.approx(100 * (truths == 1).sum() / chromosome)
    assert rows[1]["right"] == pytest.approx(100.0)
    assert rows[1]["Dice"] == rows[1]["Dice best naming"] == pytest.approx(100.0)


def test_outcome_rows_score_a_pair_named_the_wrong_way_round_by_its_better_naming():
    truths = _truths()
    predicted = truths.copy()
    predicted[1] = swap_names(truths[1])
    row = outcome_rows({"a": predicted}, truths)[0]
    assert row["pairs better swapped"] == 1 and row["misnamed"] > 0
    assert row["Dice"] < 100 and row["Dice best naming"] == row["Dice best piece naming"] == pytest.approx(100.0)


def test_outcome_rows_rename_a_piece_split_off_one_chromosome_by_its_truth():
    truths = _truths()
    predicted = truths.copy()
    predicted[0, 5:7, 1:3] = 2  # the end of chromosome 1, cut off by the overlap, called 2
    row = outcome_rows({"a": predicted}, truths)[0]
    assert row["pairs better swapped"] == 0 and row["Dice best naming"] < 100
    assert row["Dice best piece naming"] == pytest.approx(100.0)


def test_spread_row_counts_pairs_past_each_step_and_the_worst_share_of_the_loss():
    differences = np.array([-20.0, -2.0, -0.5, 0.0, 3.0] + [0.0] * 95)
    row = spread_row(differences)
    assert row["pairs"] == 100 and row["mean difference"] == pytest.approx(-19.5 / 100)
    assert (row["gain > 1"], row["loss > 1"], row["gain > 10"], row["loss > 10"]) == (1, 2, 0, 1)
    assert row["worst 1 % share of loss"] == pytest.approx(100 * 20 / 22.5)
    assert spread_row(np.zeros(3))["worst 1 % share of loss"] == 0.0


def test_difference_rows_give_the_mean_gain_and_an_interval_that_reaches_zero_for_one_pair():
    truths = np.concatenate([_truths()] * 10)
    lost = truths.copy()
    lost[0][lost[0] == 3] = 1  # one pair of 20 loses its overlap
    rows = {row["score"]: row for row in difference_rows(score_batch(truths, truths), score_batch(lost, truths))}
    hausdorff = rows["hausdorff"]
    assert hausdorff["difference"] < 0 and rows["dice"]["difference"] > 0
    assert hausdorff["95% low"] < hausdorff["difference"] < hausdorff["95% high"] == pytest.approx(0)
    same = difference_rows(score_batch(lost, truths), score_batch(lost, truths))
    assert all(row["difference"] == row["95% low"] == row["95% high"] == 0 for row in same)


@pytest.mark.parametrize(("argv", "message"), [
    (["--against", "m", "--worst", "0"], "--worst must be 1 or more"),
    (["--against", "m", "--pictures", "worst.jpg"], "--pictures writes a PNG"),
    (["--against", "m", "--draws", "0"], "--draws must be 1 or more"),
])
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_main_names_a_missing_model_before_any_work(tmp_path, capsys):
    assert main(["--against", str(tmp_path / "missing")]) == 2
    assert "cannot load model" in capsys.readouterr().err


def test_main_refuses_two_models_that_score_in_different_frames(training_h5, tmp_path, capsys):
    larger = tmp_path / "larger"
    shutil.copytree(REPO / "space" / "model", larger)
    config = json.loads((larger / "preprocessor_config.json").read_text())
    (larger / "preprocessor_config.json").write_text(json.dumps({**config, "minimum_size": 160}))
    argv = ["--model", str(larger), "--against", str(REPO / "space" / "model"), "--h5", str(training_h5)]
    assert main(argv) == 2
    assert "different frames" in capsys.readouterr().err


def test_main_compares_the_bundled_model_with_itself_on_a_small_rebuild(training_h5, tmp_path):
    model = str(REPO / "space" / "model")
    out, pictures = tmp_path / "errors.md", tmp_path / "worst.png"
    argv = ["--model", model, "--against", model, "--h5", str(training_h5), "--out", str(out),
            "--pictures", str(pictures), "--worst", "2"]
    assert main(argv) == 0
    text = out.read_text()
    assert "| overlap |" in text and "worst 1 % share of loss" in text
    spread = text.split("Per-pair Dice difference")[1].strip().splitlines()[-1].split("|")
    assert float(spread[2]) == 0.0  # the same model scores the same on every pair
    assert "| hausdorff | 0.000 | 0.000 | 0.000 |" in text
    assert pictures.stat().st_size > 0
