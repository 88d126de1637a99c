"""The model the app ships with (space/model): loadable, small, and carrying the scores that
results/bundled-default measured for it."""

import json
import re
from pathlib import Path

import yaml

import amfl.hub
from amfl.inference import DEFAULT_MODEL_DIR
from amfl.models import NestedUNet

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "bundled-default"
MAX_BYTES = 20_000_000


def card_metrics(folder: Path) -> dict[str, float]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(re.match(r"---\n(.*?)\n---\n", text, re.DOTALL).group(1))
    metrics = header["model-index"][0]["results"][0]["metrics"]
    return {metric["type"]: metric["value"] for metric in metrics}


def test_the_bundled_model_is_the_default_loads_and_stays_under_20_mb():
    assert DEFAULT_MODEL_DIR.resolve() == (REPO / "space" / "model").resolve()
    size = sum(path.stat().st_size for path in DEFAULT_MODEL_DIR.iterdir())
    assert size < MAX_BYTES
    model = amfl.hub.from_pretrained(DEFAULT_MODEL_DIR)
    assert isinstance(model, NestedUNet) and not model.training


def test_its_card_carries_the_test_scores_measured_in_results():
    record = json.loads((RESULTS / "training_metrics.json").read_text(encoding="utf-8"))
    measured = record["metrics"]
    card = card_metrics(DEFAULT_MODEL_DIR)
    for name in ("acc", "dice", "iou", "recall", "precision", "fnr", "fpr", "hausdorff"):
        assert card[name] == round(measured[name], 4), name
    evaluation = json.loads((RESULTS / "evaluation.json").read_text(encoding="utf-8"))
    rescored = evaluation["models"][0]
    assert rescored["images"] == record["images"]
    assert abs(rescored["dice"] - measured["dice"]) < 0.01, "results/ scored another model than the trainer did"
