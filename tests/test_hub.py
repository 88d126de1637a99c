"""Hub format: save/load round trip, safetensors only, clear errors, measured-only model
cards, and the preprocessing saved with a Hub model."""

import json
import os
import subprocess
import sys

import httpx2
import pytest
import torch
import yaml
from huggingface_hub.errors import RemoteEntryNotFoundError

import amfl.hub
from amfl.hub import CardEvaluation
from amfl.models import NestedUNet, PatchDiscriminator, create_discriminator, create_model
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor


@pytest.fixture
def saved_generator(tmp_path):
    torch.manual_seed(0)
    model = create_model("amfl-small", base_width=4)
    model.save_pretrained(tmp_path)
    return model, tmp_path


def card_metadata(folder) -> dict:
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


def test_round_trip_gives_identical_outputs(saved_generator):
    model, folder = saved_generator
    images = torch.rand(2, 1, 32, 48)
    loaded = amfl.hub.from_pretrained(folder)
    assert isinstance(loaded, NestedUNet) and isinstance(loaded, amfl.hub.AmflHubMixin) and not loaded.training
    assert torch.equal(model.eval()(images), loaded(images))
    assert torch.equal(NestedUNet.from_pretrained(folder)(images), loaded(images))


def test_folder_holds_config_safetensors_and_card_only(saved_generator):
    _, folder = saved_generator
    assert sorted(path.name for path in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config == {"architecture": "NestedUNet", "base_width": 4, "in_channels": 1, "num_classes": 4}


def test_discriminator_round_trips_through_the_generic_loader(tmp_path):
    discriminator = create_discriminator(base_width=4).eval()
    discriminator.save_pretrained(tmp_path)
    loaded = amfl.hub.from_pretrained(tmp_path)
    assert isinstance(loaded, PatchDiscriminator)
    image, segmentation = torch.rand(1, 1, 32, 32), torch.rand(1, 4, 32, 32)
    assert torch.equal(discriminator(image, segmentation), loaded(image, segmentation))


def test_weights_that_do_not_fit_the_config_name_the_tensors(saved_generator):
    _, folder = saved_generator
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "base_width": 8}))
    with pytest.raises(ValueError, match=r"shape mismatches: .*nodes\.x0_0\.0\.weight"):
        amfl.hub.from_pretrained(folder)


def test_missing_tensors_are_named(saved_generator):
    _, folder = saved_generator
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    del weights["head.bias"]
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(ValueError, match="missing tensors: head.bias"):
        amfl.hub.from_pretrained(folder)


def test_pickled_weights_are_never_loaded(saved_generator):
    model, folder = saved_generator
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # what the stock mixin falls back to
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        amfl.hub.from_pretrained(folder)


def test_folder_of_another_architecture_is_refused(saved_generator):
    _, folder = saved_generator
    with pytest.raises(ValueError, match="records architecture 'NestedUNet'"):
        PatchDiscriminator.from_pretrained(folder)


def test_unknown_architecture_is_refused(saved_generator):
    _, folder = saved_generator
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "SegFormer"}))
    with pytest.raises(ValueError, match="'SegFormer'"):
        amfl.hub.from_pretrained(folder)


def test_offline_hub_id_fails_with_a_clear_message(tmp_path):
    """For the weights and for the preprocessing: an unreachable preprocessor_config.json is
    an error, never a silent default."""
    script = (
        "import amfl.hub\n"
        "from amfl.models import create_model\n"
        "model = create_model('amfl-small', base_width=4)\n"
        "for load in (amfl.hub.from_pretrained, lambda source: amfl.hub.load_preprocessor(source, model)):\n"
        "    try:\n"
        "        load('amfl-project/no-such-model')\n"
        "    except FileNotFoundError as error:\n"
        "        print(error)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    weights, preprocessing = result.stdout.splitlines()
    assert "HF_HUB_OFFLINE is set" in weights and "amfl-project/no-such-model" in weights
    assert "HF_HUB_OFFLINE is set" in preprocessing and PREPROCESSOR_FILE in preprocessing


def test_a_hub_model_saved_without_preprocessing_gets_the_defaults(monkeypatch):
    model = create_model("bisenetv1", base_width=8)
    url = f"https://huggingface.co/amfl-project/old-model/resolve/main/{PREPROCESSOR_FILE}"
    response = httpx2.Response(404, request=httpx2.Request("GET", url))

    def download(**kwargs):
        raise RemoteEntryNotFoundError(f"404: no {PREPROCESSOR_FILE}", response=response)

    monkeypatch.setattr(amfl.hub, "hf_hub_download", download)
    loaded = amfl.hub.load_preprocessor("amfl-project/old-model", model)
    assert loaded == Preprocessor.for_model(model) and loaded.size_divisor == 32


def test_the_preprocessing_saved_with_a_hub_model_is_read(tmp_path, monkeypatch):
    saved = Preprocessor(pad_value=255.0, minimum_size=160)
    path = saved.save(tmp_path)
    requested = []
    monkeypatch.setattr(amfl.hub, "hf_hub_download", lambda **kwargs: requested.append(kwargs) or str(path))
    assert amfl.hub.load_preprocessor("amfl-project/model", create_model("amfl-small", base_width=4)) == saved
    assert requested == [{"repo_id": "amfl-project/model", "filename": PREPROCESSOR_FILE}]


def test_weight_misfits_name_each_kind_of_problem_and_nothing_for_fitting_weights():
    small, wider = create_model("amfl-small", base_width=4), create_model("amfl-small", base_width=8)
    assert amfl.hub.weight_misfits(small, small.state_dict()) == []
    weights = {**wider.state_dict(), "extra.weight": torch.zeros(1)}
    del weights["head.bias"]
    missing, unexpected, wrong_shape = amfl.hub.weight_misfits(small, weights)
    assert missing == "missing tensors: head.bias"
    assert unexpected == "unexpected tensors: extra.weight"
    assert wrong_shape.startswith("shape mismatches: ") and wrong_shape.endswith(" more")  # listed, then counted


def test_card_without_metrics_says_not_evaluated(saved_generator):
    _, folder = saved_generator
    metadata = card_metadata(folder)
    assert metadata["library_name"] == "amfl" and "model-index" not in metadata
    assert "Not evaluated yet" in (folder / "README.md").read_text()


def test_card_carries_the_measured_metrics_and_command(tmp_path):
    metrics = {"dice": 97.1234, "hausdorff": 1.25, "iou_class_3": 90.5}
    real = {"dice": 61.5}
    evaluations = [
        CardEvaluation("me/chromosomes", metrics, "python x.py"),
        CardEvaluation("me/real-pairs", real, "python y.py", subset="overlapping-raw"),
    ]
    create_model("amfl-small", base_width=4).save_pretrained(tmp_path, model_card_kwargs={"evaluations": evaluations})
    metadata = card_metadata(tmp_path)
    assert metadata["datasets"] == ["me/chromosomes", "me/real-pairs"]
    results = metadata["model-index"][0]["results"]
    assert [{item["type"]: item["value"] for item in result["metrics"]} for result in results] == [metrics, real]
    assert results[1]["dataset"]["config"] == "overlapping-raw" and results[1]["dataset"]["split"] == "test"
    text = (tmp_path / "README.md").read_text()
    assert "python x.py\npython y.py" in text
    assert "| me/chromosomes, test | 97.1234 | 1.2500 | 90.5000 |" in text
    assert "| me/real-pairs (overlapping-raw), test | 61.5000 | - | - |" in text


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"metrics": {"dice": 90.0}, "dataset": "a/b", "command": ""}, "command that measured"),
        ({"metrics": {"accuracy": 90.0}, "dataset": "a/b", "command": "c"}, "unknown metric"),
        ({"metrics": {"dice": float("nan")}, "dataset": "a/b", "command": "c"}, "finite"),
        ({"metrics": {}, "dataset": "a/b", "command": "c"}, "no metrics"),
    ],
)
def test_card_refuses_scores_without_provenance_or_with_bad_values(scores, message):
    with pytest.raises(ValueError, match=message):
        CardEvaluation(**scores)


def test_a_saved_model_folders_card_lists_its_preprocessing_and_is_rewritten_when_it_changes(tmp_path):
    model = create_model("amfl-small", base_width=4)
    evaluations = [CardEvaluation("me/chromosomes", {"dice": 91.25}, "python x.py")]
    folder = amfl.hub.save_model_folder(model, tmp_path / "model", Preprocessor(cut_piece_share=0.5), evaluations)
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md", "config.json", "model.safetensors", PREPROCESSOR_FILE]
    text = (folder / "README.md").read_text()
    assert "| me/chromosomes, test | 91.2500 |" in text
    assert text.index("## Evaluation") < text.index("## Preprocessing and output steps")
    assert "| `cut_piece_share` | `0.5` |" in text and "| `crossing_arms` | `false` |" in text
    Preprocessor(crossing_arms=True).save(folder)
    amfl.hub.write_model_card(folder)
    rewritten = (folder / "README.md").read_text()
    assert "| `cut_piece_share` | `0.0` |" in rewritten and "| `crossing_arms` | `true` |" in rewritten
    assert "91.2500" not in rewritten and "Not evaluated yet" in rewritten
