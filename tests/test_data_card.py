import dataclasses

import h5py
import numpy as np
import pytest
from huggingface_hub import DatasetCard

from amfl.data.__main__ import main
from amfl.data.card import DataOrigin, measure_facts, render_dataset_card, write_dataset_card
from amfl.data.cleaning import CleaningReport
from amfl.data.protocol import split_pairs
from amfl.data.sources import PUBLIC_ORIGIN
from conftest import make_pairs


@pytest.fixture
def splits():
    return split_pairs(make_pairs(20), seed=1)


def _facts(splits, origin=DataOrigin.rebuild()):
    return measure_facts(splits, origin, 1, CleaningReport(20, 7, 3), None, "pytest")


def test_card_metadata_parses_as_hub_yaml(splits, tmp_path):
    path = write_dataset_card(_facts(splits), tmp_path / "README.md")
    metadata = DatasetCard.load(path).data.to_dict()
    assert metadata["license"] == "other"
    assert metadata["license_name"] == "pommier-overlapping-chromosomes"
    assert metadata["license_link"] == "https://github.com/jeanpat/DeepFISH"
    assert metadata["task_categories"] == ["image-segmentation"]
    assert metadata["size_categories"] == ["n<1K"]
    assert metadata["pretty_name"] == "Overlapping chromosome pairs (Pommier, rebuilt)"
    assert "cytogenetics" in metadata["tags"]
    (config,) = metadata["configs"]
    assert config["config_name"] == "default"
    assert config["data_files"] == [
        {"split": name, "path": f"data/{name}-*"} for name in ("train", "validation", "test")
    ]


@pytest.mark.parametrize(
    ("total", "category"), [(999, "n<1K"), (1_000, "1K<n<10K"), (13_434, "10K<n<100K"), (100_000, "100K<n<1M")]
)
def test_size_category_follows_the_sample_count(splits, total, category):
    facts = dataclasses.replace(_facts(splits), split_sizes={"train": total - 1, "validation": 0, "test": 1})
    assert render_dataset_card(facts).data.to_dict()["size_categories"] == [category]


def test_rebuilt_card_names_the_source_images_and_the_procedure(splits):
    text = render_dataset_card(_facts(splits)).text
    assert "rebuilt from the source images `DAPI.tif` + `Cy3.tif` by `amfl.data`" in text
    assert PUBLIC_ORIGIN in text
    assert "## Generation procedure\n\nRebuilt by `amfl.data`" in text
    assert "centred on a common 94 x 93 canvas" in text


def test_h5_card_names_the_file_and_does_not_claim_the_rebuild(splits, tmp_path):
    origin = DataOrigin.h5(tmp_path / "private" / "LowRes_13434_overlapping_pairs.h5")
    card = render_dataset_card(_facts(splits, origin))
    assert "read from the original file `LowRes_13434_overlapping_pairs.h5`" in card.text
    assert "## How the original file was made" in card.text
    assert "## Generation procedure" not in card.text
    assert "rebuilt from" not in card.text.lower() and "Rebuilt by" not in card.text
    assert card.data.pretty_name == "Overlapping chromosome pairs (Pommier, from LowRes_13434_overlapping_pairs.h5)"
    assert str(tmp_path) not in str(card)  # the user's folders stay private


def test_card_without_cleaning_or_fidelity_says_so(splits):
    text = render_dataset_card(measure_facts(splits, DataOrigin.rebuild(), 1, labels_cleaned=False)).text
    assert "Labels are as in the source file (not cleaned)." in text
    assert "Fidelity" not in text


def test_cleaned_labels_without_a_measurement_are_not_called_uncleaned(splits):
    text = render_dataset_card(measure_facts(splits, DataOrigin.rebuild(), 1)).text
    assert "The labels were cleaned this way" in text and "as in the source file" not in text


def test_export_from_an_h5_writes_a_card_naming_it(tmp_path):
    h5 = tmp_path / "orig.h5"
    with h5py.File(h5, "w") as handle:
        handle.create_dataset("dataset_1", data=make_pairs(10).stacked().astype(np.int64))
    assert main(["export", str(tmp_path / "export"), "--h5", str(h5), "--quiet"]) == 0
    card = DatasetCard.load(tmp_path / "export" / "README.md")
    assert "read from the original file `orig.h5`" in card.text
    assert card.data.pretty_name == "Overlapping chromosome pairs (Pommier, from orig.h5)"
