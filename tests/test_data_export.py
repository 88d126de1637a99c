import datasets
import numpy as np
import pytest

from amfl.data.card import DataOrigin, measure_facts
from amfl.data.cleaning import CleaningReport
from amfl.data.export import HubPushError, export_dataset, push_dataset
from amfl.data.protocol import split_pairs
from conftest import make_pairs


@pytest.fixture
def exported(tmp_path):
    pairs = make_pairs(20)
    pairs.images[0, 0, 0] = -3  # spline undershoot is stored as background
    splits = split_pairs(pairs, seed=1)
    facts = measure_facts(splits, DataOrigin.rebuild(), 1, CleaningReport(20, 7, 3), None, "pytest")
    return pairs, splits, facts, export_dataset(splits, facts, tmp_path / "export")


def test_export_round_trips_images_and_labels(exported):
    pairs, splits, _, out_dir = exported
    loaded = datasets.load_from_disk(str(out_dir))
    assert {name: len(split) for name, split in loaded.items()} == {"train": 12, "validation": 4, "test": 4}
    row = loaded["test"][0]
    source = splits.indices["test"][0]
    assert row["sample_id"] == source
    np.testing.assert_array_equal(np.array(row["image"]), np.clip(pairs.images[source], 0, None))
    np.testing.assert_array_equal(np.array(row["label"]), pairs.labels[source])
    assert row["has_overlap"] == bool((pairs.labels[source] == 3).any())


def test_export_writes_the_card_with_measured_counts(exported):
    _, splits, facts, out_dir = exported
    card = (out_dir / "README.md").read_text()
    assert "| train | 12 |" in card and "| test | 4 |" in card
    background = int((np.concatenate([s.labels for s in (splits.train, splits.validation, splits.test)]) == 0).sum())
    assert f"| 0 | background | black | {background:,} |" in card
    assert "cleaning changed 7 pixels in 3 of 20 samples" in card
    assert f"largest value: {facts.grey_max}" in card


def test_offline_push_fails_clearly_and_keeps_the_export(exported, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out_dir = exported[3]
    with pytest.raises(HubPushError, match=rf"could not push .*kept at {out_dir}"):
        push_dataset(out_dir, "someone/overlapping-chromosomes")
    assert (out_dir / "README.md").is_file() and (out_dir / "dataset_dict.json").is_file()
