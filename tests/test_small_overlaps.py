"""Small overlap parts merged into their chromosome (amfl.small_overlaps), as a model's saved
output step, and the validation sweep that chooses its size (amfl.overlap_sweep)."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from amfl.models import create_model
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import parse_args, save_with_size, sweep_rows
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.real_scoring import RealPredictions
from amfl.small_overlaps import merge_small_overlaps, merge_small_overlaps_batch


def _touching_with_speck() -> np.ndarray:
    """Two touching chromosomes (1: 12 px, 2: 24 px) with a 2-pixel overlap speck inside 2."""
    labels = np.zeros((8, 10), np.uint8)
    labels[1:7, 1:3] = FIRST
    labels[1:7, 3:7] = SECOND
    labels[3, 4:6] = OVERLAP
    return labels


def _crossing() -> np.ndarray:
    """A crossing whose overlap part is 9 pixels."""
    labels = np.zeros((9, 9), np.uint8)
    labels[3:6, :] = FIRST
    labels[:, 3:6] = SECOND
    labels[3:6, 3:6] = OVERLAP
    return labels


def test_a_speck_goes_to_the_chromosome_around_it_and_a_crossing_stays():
    merged = merge_small_overlaps(_touching_with_speck(), 3)
    assert not (merged == OVERLAP).any()
    assert np.array_equal(merged[3, 4:6], [SECOND, SECOND])
    assert np.array_equal(merge_small_overlaps(_crossing(), 9), _crossing())
    assert (merge_small_overlaps(_crossing(), 10) == OVERLAP).sum() == 0


def test_size_zero_keeps_every_part_and_a_lone_speck_becomes_background():
    assert np.array_equal(merge_small_overlaps(_touching_with_speck(), 0), _touching_with_speck())
    lone = np.zeros((5, 5), np.uint8)
    lone[2, 2] = OVERLAP
    assert not merge_small_overlaps(lone, 2).any()
    batch = np.stack([_touching_with_speck(), _touching_with_speck()])[None]
    assert np.array_equal(merge_small_overlaps_batch(batch, 3)[0, 1], merge_small_overlaps(_touching_with_speck(), 3))


def test_the_preprocessor_keeps_the_size_and_reads_older_files_as_zero(tmp_path):
    Preprocessor(min_overlap_pixels=12).save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE).min_overlap_pixels == 12
    older = Preprocessor().to_dict()
    del older["min_overlap_pixels"]
    assert Preprocessor.from_dict(older).min_overlap_pixels == 0
    with pytest.raises(ValueError, match="min_overlap_pixels must be a whole number of pixels >= 0"):
        Preprocessor(min_overlap_pixels=-1)


def test_the_output_merges_specks_before_naming_by_area():
    """Label 1 is the smaller here; named by area while the speck is still there, the part
    holding it would be renamed. Merged first, the touching pair keeps the network's names."""
    labels = _touching_with_speck()
    swapped = np.where(labels == FIRST, SECOND, np.where(labels == SECOND, FIRST, labels))
    by_area = Preprocessor(naming="area", min_overlap_pixels=3)
    assert np.array_equal(by_area.finish(swapped), merge_small_overlaps(swapped, 3))
    assert not np.array_equal(Preprocessor(naming="area").finish(swapped), swapped)


def test_the_sweep_scores_each_size_on_the_same_network_labels():
    truth = np.where(_touching_with_speck() == OVERLAP, SECOND, _touching_with_speck())
    pair = SimpleNamespace(labels=truth, cluster=SimpleNamespace(kind="touching"))
    real = RealPredictions("m", [pair], {"raw": [_touching_with_speck()], "masked": [truth]})
    pommier = (np.stack([_touching_with_speck()]), np.stack([truth]))
    rows = sweep_rows(Preprocessor(), [0, 3], pommier, real)
    assert [row["min overlap pixels"] for row in rows] == [0, 3]
    assert rows[0]["Pommier Dice"] < 100 and rows[1]["Pommier Dice"] == pytest.approx(100)
    assert rows[0]["touching raw Dice"] < rows[1]["touching raw Dice"] == pytest.approx(100)
    assert rows[0]["touching masked Dice"] == rows[1]["touching masked Dice"] == pytest.approx(100)


def test_the_sweep_saves_a_copy_with_the_chosen_size_and_refuses_to_overwrite(tmp_path):
    model = create_model("amfl-small", base_width=4)
    model.save_pretrained(tmp_path / "model")
    output = Preprocessor.for_model(model, naming="area")
    output.save(tmp_path / "model")
    saved = save_with_size(tmp_path / "model", output, 7, tmp_path / "copy")
    assert Preprocessor.read(saved) == dataclasses.replace(Preprocessor.read(tmp_path / "model" / PREPROCESSOR_FILE), min_overlap_pixels=7)
    assert (tmp_path / "copy" / "model.safetensors").read_bytes() == (tmp_path / "model" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        save_with_size(tmp_path / "model", output, 7, tmp_path / "copy")
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "5", "10", "--save_to", str(tmp_path / "other")])
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "-1"])
    with pytest.raises(SystemExit):
        parse_args(["--model", str(tmp_path / "model"), "--sizes", "5", "--save_to", str(tmp_path / "copy")])
