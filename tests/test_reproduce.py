"""The one-command reproduction covers every run behind Tables I, II and V exactly once, and
hands what it trained to ``amfl.evaluate``."""

import json
from types import SimpleNamespace

import amfl.reproduce
from amfl.models import MODELS, create_model
from amfl.reproduce import Row, main, paper_rows


def test_rows_cover_the_papers_tables_once():
    rows = paper_rows()
    assert len(rows) == len(set(rows)) == 25
    assert rows[0] == Row("nestedunet", "lovasz", True)  # AMFL
    baselines = {row.model for row in rows if row.loss == "ce" and not row.gan}
    assert baselines == {name for name, spec in MODELS.items() if spec.paper_name not in (None, "AMFL")}
    assert {row.loss for row in rows if row.model == "nestedunet" and not row.gan} == {
        "lovasz", "ce", "weighted_ce", "dice", "weighted_dice"
    }
    assert all(row.model in MODELS for row in rows)


def test_unknown_rows_are_refused(capsys, tmp_path):
    assert main(["--out", str(tmp_path), "--only", "nosuch-ce-gan"]) == 2
    assert "nosuch-ce-gan" in capsys.readouterr().err


def test_trained_rows_are_scored_by_amfl_evaluate(tmp_path, training_h5, monkeypatch):
    """Training replaced by saving a tiny model: what is checked is the hand-over to
    ``amfl.evaluate.evaluate_models`` (row names, sample cap, command) and the exit code."""
    trained = []

    def save_tiny_model(config):
        trained.append(config)
        create_model("amfl-small", base_width=4).save_pretrained(config.output_dir / "model")
        return SimpleNamespace(model_dir=config.output_dir / "model")

    monkeypatch.setattr(amfl.reproduce, "train", save_tiny_model)
    rows = ["nestedunet-lovasz-gan", "unet-ce-nogan"]
    argv = ["--out", str(tmp_path), "--only", *rows, "--max_samples", "4", "--timing_runs", "1", "--h5", str(training_h5)]
    assert main(argv) == 0
    assert [(config.model, config.loss, config.gan) for config in trained] == [("nestedunet", "lovasz", True), ("unet", "ce", False)]
    record = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    assert [model["name"] for model in record["models"]] == rows
    assert [model["folder"] for model in record["models"]] == [str(tmp_path / row / "model") for row in rows]
    assert record["test_images"] == 4
    assert record["command"] == "python -m amfl.reproduce " + " ".join(argv)
    assert json.loads((tmp_path / "budget.json").read_text())["max_samples"] == 4
