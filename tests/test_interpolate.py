"""``python -m amfl.interpolate``: interpolated model folders, their validation scores and the
weight chosen by the --hold_pommier rule."""

import json

import pytest
import torch

import amfl.hub
from amfl.data.dataset import load_pairs
from amfl.data.protocol import split_pairs
from amfl.interpolate import SOURCE_FILE, WeightScore, choose, main, weight_folder
from amfl.metrics import score_batch
from amfl.models import NestedUNet
from amfl.training import parse_config
from amfl.training.data import SplitTensors, training_preprocessor


@pytest.fixture
def run_and_models(tmp_path, training_h5):
    """A finished run's folder (only its training_config.json matters here), a start model
    with that run's preprocessing, and a 'fine-tune' of it (every weight moved)."""
    run = tmp_path / "run"
    config = parse_config(["--model", "amfl-small", "--base_width", "2", "--h5", str(training_h5),
                           "--max_samples", "40", "--output_dir", str(run), "--quiet"])
    run.mkdir()
    config.save(run)
    torch.manual_seed(0)
    start = NestedUNet(base_width=2)
    start.save_pretrained(tmp_path / "start")
    training_preprocessor(config).save(tmp_path / "start")
    tuned = NestedUNet(base_width=2)
    tuned.save_pretrained(tmp_path / "tuned")
    return config, tmp_path / "start", tmp_path / "tuned"


def validation_dice(folder, config) -> float:
    """Pommier validation Dice (the samples with overlap) of a saved model, predicted here
    without the CLI's loaders."""
    model = amfl.hub.from_pretrained(folder)
    pairs = split_pairs(load_pairs(config.h5, progress=False), seed=config.seed).validation_scored.subset(slice(config.max_samples))
    split = SplitTensors.from_pairs(pairs, amfl.hub.load_preprocessor(folder, model))
    with torch.no_grad():
        predicted = model(split.images).argmax(dim=1).numpy()
    return score_batch(predicted, split.labels.numpy()).means["dice"]


def test_a_validated_sweep_writes_loadable_folders_scores_them_and_chooses(tmp_path, run_and_models, capsys):
    config, start, tuned = run_and_models
    out = tmp_path / "sweep"
    assert main([str(start), str(tuned / "model.safetensors"), "--weights", "0.5", "1",
                 "--out", str(out), "--validate_run", str(config.output_dir), "--quiet"]) == 0
    record = json.loads((out / "interpolation.json").read_text())
    assert [row["weight"] for row in record["scores"]] == [0.0, 0.5, 1.0]
    for row in record["scores"]:
        folder = weight_folder(out, row["weight"])
        assert json.loads((folder / SOURCE_FILE).read_text())["weight"] == row["weight"]
        assert "## Preprocessing and output steps" in (folder / "README.md").read_text()
        assert row["dice"]["validation"] == pytest.approx(validation_dice(folder, config), abs=1e-6)
    rows = [WeightScore(row["weight"], row["folder"], row["dice"]) for row in record["scores"]]
    assert record["chosen_weight"] == choose(rows).weight
    assert f"chosen: weight {record['chosen_weight']:.2f}" in capsys.readouterr().out
    # weight 0 is the start itself
    for name, tensor in amfl.hub.from_pretrained(start).state_dict().items():
        assert torch.equal(amfl.hub.from_pretrained(weight_folder(out, 0.0)).state_dict()[name], tensor), name


def test_several_fine_tunes_are_averaged_into_the_tuned_end(tmp_path, run_and_models):
    _, start, tuned = run_and_models
    torch.manual_seed(1)
    NestedUNet(base_width=2).save_pretrained(tmp_path / "tuned-2")
    out = tmp_path / "mean"
    assert main([str(start), str(tuned), str(tmp_path / "tuned-2"), "--weights", "1", "--out", str(out)]) == 0
    ends = [amfl.hub.from_pretrained(folder).state_dict() for folder in (tuned, tmp_path / "tuned-2")]
    mixed = amfl.hub.from_pretrained(weight_folder(out, 1.0)).state_dict()
    for name, tensor in mixed.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (ends[0][name] + ends[1][name]) / 2)
    assert json.loads((weight_folder(out, 1.0) / SOURCE_FILE).read_text())["tuned"] == [str(tuned), str(tmp_path / "tuned-2")]


def test_the_choice_keeps_the_starts_pommier_score_before_the_mean():
    scores = [
        WeightScore(0.0, "a", {"validation": 93.0, "real": 20.0}),
        WeightScore(0.5, "b", {"validation": 93.1, "real": 50.0}),
        WeightScore(1.0, "c", {"validation": 92.0, "real": 65.0}),
    ]
    assert choose(scores).weight == 0.5
    assert choose([scores[0], scores[2]]).weight == 0.0


def test_a_pommier_margin_refuses_weights_too_close_to_the_start():
    scores = [
        WeightScore(0.0, "a", {"validation": 93.0, "real": 20.0}),
        WeightScore(0.5, "b", {"validation": 93.3, "real": 40.0}),
        WeightScore(0.75, "c", {"validation": 93.1, "real": 55.0}),
    ]
    assert choose(scores).weight == 0.75
    assert choose(scores, pommier_margin=0.25).weight == 0.5
    assert choose(scores, pommier_margin=0.5).weight == 0.0


def test_a_negative_pommier_margin_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["a", "b", "--out", "o", "--pommier_margin", "-1"])
    assert "--pommier_margin must be 0 or more" in capsys.readouterr().err


def test_a_start_with_other_preprocessing_is_refused(tmp_path, run_and_models, capsys):
    config, start, tuned = run_and_models
    saved = json.loads((start / "preprocessor_config.json").read_text())
    saved["pad_value"] = 1.0
    (start / "preprocessor_config.json").write_text(json.dumps(saved))
    code = main([str(start), str(tuned), "--weights", "0.5", "--out", str(tmp_path / "o"),
                 "--validate_run", str(config.output_dir), "--quiet"])
    assert code == 2
    assert "prepares images or names its output differently from the run" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_start_named_otherwise_than_the_run_is_refused(tmp_path, run_and_models, capsys):
    config, start, tuned = run_and_models
    saved = json.loads((start / "preprocessor_config.json").read_text())
    saved["naming"] = "area"  # the run trained the strict names
    (start / "preprocessor_config.json").write_text(json.dumps(saved))
    code = main([str(start), str(tuned), "--weights", "0.5", "--out", str(tmp_path / "o"),
                 "--validate_run", str(config.output_dir), "--quiet"])
    assert code == 2
    assert "naming 'area' against the run's 'network'" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "message"), [
    ("no_run_config", "has no training_config.json"),
    ("bad_weight", "must be a finite number, 0 or more"),
    ("wider_tuned", "do not fit the starting model: shape mismatches"),
    ("no_tuned_weights", "no weights at"),
])
def test_bad_inputs_get_a_clear_error(tmp_path, run_and_models, capsys, change, message):
    config, start, tuned = run_and_models
    run, weights = config.output_dir, ["0.5"]
    if change == "no_run_config":
        run = tmp_path
    elif change == "bad_weight":
        weights = ["-0.5"]
    elif change == "wider_tuned":
        NestedUNet(base_width=4).save_pretrained(tuned)
    else:
        (tuned / "model.safetensors").unlink()
    code = main([str(start), str(tuned), "--weights", *weights, "--out", str(tmp_path / "o"),
                 "--validate_run", str(run), "--quiet"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_bad_weight_beside_good_ones_writes_no_folder(tmp_path, run_and_models, capsys):
    _, start, tuned = run_and_models
    out = tmp_path / "o"
    assert main([str(start), str(tuned), "--weights", "0.5", "nan", "--out", str(out)]) == 2
    assert "must be a finite number, 0 or more" in capsys.readouterr().err
    assert not out.exists()
