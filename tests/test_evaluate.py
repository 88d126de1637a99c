"""`python -m amfl.evaluate` end to end on tiny models: tables, figures, honest rows, and
each folder scored with its own preprocessing."""

import csv
import json

import pytest
import torch
import yaml

import amfl.evaluate
from amfl.evaluate import evaluate_models, load_test_pairs, main
from amfl.models import create_model
from amfl.preprocessing import Preprocessor
from amfl.scoring import predict_labels
from amfl.training import TrainConfig
from amfl.training.data import SplitTensors


@pytest.fixture
def tiny_models(tmp_path):
    folders = []
    for name, gan in (("with-gan", True), ("without-gan", False)):
        run = tmp_path / name
        create_model("amfl-small", base_width=4).save_pretrained(run / "model")
        TrainConfig(model="amfl-small", gan=gan, loss="lovasz").save(run / "model")
        (run / "log.jsonl").write_text(
            json.dumps({"epoch": 1, "loss": {"generator": 1.0}, "validation": {"dice": 40.0}}) + "\n"
        )
        folders.append(run / "model")
    return folders


def test_evaluate_writes_every_table_and_figure(tmp_path, tiny_models, training_h5):
    out = tmp_path / "results"
    arguments = [*map(str, tiny_models), "--h5", str(training_h5), "--out", str(out), "--max_samples", "8", "--timing_runs", "2"]
    assert main(arguments) == 0
    for stem in ("table1", "table2", "table3", "table4", "table5"):
        assert (out / f"{stem}.md").is_file() and (out / f"{stem}.csv").is_file()
    for figure in ("confusion_with-gan.png", "confusion_without-gan.png", "curves_with-gan.png", "fig6_predictions.png"):
        assert (out / figure).stat().st_size > 1000
    record = json.loads((out / "evaluation.json").read_text())
    assert record["test_images"] == 8 and [model["name"] for model in record["models"]] == ["with-gan", "without-gan"]
    assert record["command"] == "python -m amfl.evaluate " + " ".join(arguments)
    with open(out / "table2.csv") as handle:
        rows = list(csv.DictReader(handle))
    ours = [row for row in rows if row["Source"] == "ours"]
    assert [row["Model"] for row in ours] == ["with-gan", "without-gan"]
    assert float(ours[0]["Dice"]) == pytest.approx(record["models"][0]["dice"], abs=1e-4)
    assert any(row["Source"].startswith("paper") and row["Model"] == "UNet" for row in rows)
    table5 = (out / "table5.md").read_text()
    assert "| with-gan | lovasz | yes | ours |" in table5 and "| without-gan | lovasz | no | paper, Table V |" in table5
    table4 = (out / "table4.md").read_text()
    assert "not measured (no GPU)" in table4
    assert "authors' way: eager float32 forward, batch 1" in table4 and "ours: amfl.segmentation per-image path" in table4
    table1 = (out / "table1.md").read_text()
    assert "| with-gan | NestedUNet | paper, Table I |" in table1 and "without-gan" not in table1


def test_card_flag_lists_the_test_split_and_every_kind_of_real_pair(tmp_path, tiny_models, training_h5):
    out = tmp_path / "results"
    saved = Preprocessor(naming="area", crossing_arms=True, crossing_arm_reach=3)
    saved.save(tiny_models[0])
    arguments = [str(tiny_models[0]), "--h5", str(training_h5), "--out", str(out), "--max_samples", "8",
                 "--timing_runs", "2", "--real_pairs", "validation", "--card"]
    assert main(arguments) == 0
    card = (tiny_models[0] / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["datasets"] == ["pommier-lowres-13434-overlapping-pairs", "adir-mfish-real-pairs"]
    results = metadata["model-index"][0]["results"]
    configs = [result["dataset"].get("config") for result in results]
    assert configs == [None, "overlapping-raw", "overlapping-masked", "touching-raw", "touching-masked"]
    assert {result["dataset"]["split"] for result in results[1:]} == {"validation"}
    record = json.loads((out / "evaluation.json").read_text())
    pommier_dice = {item["type"]: item["value"] for item in results[0]["metrics"]}["dice"]
    assert pommier_dice == pytest.approx(record["models"][0]["dice"], abs=1e-4)
    real_rows = [row for row in record["real_pairs"]["rows"] if row["model"] == "with-gan"]
    assert [{item["type"]: item["value"] for item in result["metrics"]}["dice"] for result in results[1:]] == [
        pytest.approx(row["dice"], abs=1e-4) for row in real_rows
    ]
    assert "python -m amfl.evaluate " + " ".join(arguments) in card
    steps = card.split("## Preprocessing and output steps")[1]
    assert "| `crossing_arm_reach` | `3` |" in steps and '| `naming` | `"area"` |' in steps
    assert "| `crossing_arms` | `true` |" in steps
    assert steps.count("\n| `") == len(saved.to_dict())
    assert (out / "real_failures_with-gan.png").stat().st_size > 1000
    assert "Not evaluated yet" in (tiny_models[1] / "README.md").read_text()  # not passed: untouched


def test_bfloat16_scores_both_test_sets_in_bfloat16_and_says_so(tmp_path, tiny_models, training_h5, monkeypatch):
    formats = {}
    real_predict, real_segmenter = amfl.evaluate.predict_labels, amfl.evaluate.Segmenter.from_pretrained

    def predict(accelerator, model, *rest, **options):
        formats["test split"] = next(model.parameters()).dtype
        return real_predict(accelerator, model, *rest, **options)

    def segmenter(folder, precision):
        loaded = real_segmenter(folder, precision)
        formats["real pairs"] = next(loaded.model.parameters()).dtype
        return loaded

    monkeypatch.setattr(amfl.evaluate, "predict_labels", predict)
    monkeypatch.setattr(amfl.evaluate.Segmenter, "from_pretrained", segmenter)
    out = tmp_path / "results"
    assert main([str(tiny_models[0]), "--h5", str(training_h5), "--out", str(out), "--max_samples", "8",
                 "--timing_runs", "2", "--real_pairs", "validation", "--precision", "bfloat16"]) == 0
    assert formats == {"test split": torch.bfloat16, "real pairs": torch.bfloat16}
    assert json.loads((out / "evaluation.json").read_text())["precision"] == "bfloat16"


def test_a_card_is_never_written_from_bfloat16_scores(tiny_models, capsys):
    with pytest.raises(SystemExit):
        main([str(tiny_models[0]), "--precision", "bfloat16", "--card"])
    assert "--card records a model's float32 scores" in capsys.readouterr().err
    assert "Not evaluated yet" in (tiny_models[0] / "README.md").read_text()


def test_evaluate_reports_a_missing_folder_clearly(tmp_path, capsys, training_h5):
    missing = tmp_path / "nowhere"
    assert main([str(missing), "--h5", str(training_h5), "--out", str(tmp_path / "out")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_names_must_match_folders(tmp_path, tiny_models):
    with pytest.raises(SystemExit):
        main([*map(str, tiny_models), "--names", "only-one"])


def test_each_folder_is_scored_with_its_own_preprocessing(tmp_path, training_h5, monkeypatch):
    """Same weights, two folders: one saved with pad value 255, one without a
    preprocessor_config.json (so the default, pad value 0). Each model must see the test
    images prepared its own way."""
    seen = {}

    def recording_predict_labels(accelerator, model, loader, description, progress=True, output=None):
        seen[description] = torch.cat([images for images, _ in loader])
        return predict_labels(accelerator, model, loader, description, progress, output)

    monkeypatch.setattr(amfl.evaluate, "predict_labels", recording_predict_labels)
    model = create_model("amfl-small", base_width=4)
    folders = {0.0: tmp_path / "pad-0", 255.0: tmp_path / "pad-255"}
    for folder in folders.values():
        model.save_pretrained(folder)
    Preprocessor.for_model(model, pad_value=255.0).save(folders[255.0])
    results = evaluate_models(
        list(folders.values()), None, tmp_path / "out", command="test", h5=training_h5, max_samples=4, timing_runs=1
    )
    pairs = load_test_pairs(training_h5, seed=123, max_samples=4)
    for result, pad_value in zip(results, folders, strict=True):
        preprocessor = Preprocessor.for_model(model, pad_value=pad_value)
        assert result.preprocessor == preprocessor
        assert torch.equal(seen[f"scoring {result.name}"], SplitTensors.from_pairs(pairs, preprocessor).images)
        assert result.predictions.shape == pairs.labels.shape  # cropped back for the figures
    assert not torch.equal(seen["scoring pad-0"], seen["scoring pad-255"])
    record = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert [row["preprocessor"]["pad_value"] for row in record["models"]] == [0.0, 255.0]


def test_the_pad_value_flag_is_gone(tiny_models):
    with pytest.raises(SystemExit):
        main([*map(str, tiny_models), "--image_pad_value", "255"])
