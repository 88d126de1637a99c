"""Stray overlap parts (small or one-sided) merged into their chromosome (amfl.small_overlaps),
as a model's saved output step, and the validation sweep that chooses its settings
(amfl.overlap_sweep)."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from amfl.models import create_model
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import parse_args, save_with_settings, sweep_rows
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.real_scoring import RealPredictions
from amfl.small_overlaps import merge_stray_overlaps, merge_stray_overlaps_batch


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
    merged = merge_stray_overlaps(_touching_with_speck(), 3)
    assert not (merged == OVERLAP).any()
    assert np.array_equal(merged[3, 4:6], [SECOND, SECOND])
    assert np.array_equal(merge_stray_overlaps(_crossing(), 9), _crossing())
    assert (merge_stray_overlaps(_crossing(), 10) == OVERLAP).sum() == 0


def test_size_zero_keeps_every_part_and_a_lone_speck_becomes_background():
    assert np.array_equal(merge_stray_overlaps(_touching_with_speck(), 0), _touching_with_speck())
    lone = np.zeros((5, 5), np.uint8)
    lone[2, 2] = OVERLAP
    assert not merge_stray_overlaps(lone, 2).any()
    batch = np.stack([_touching_with_speck(), _touching_with_speck()])[None]
    assert np.array_equal(merge_stray_overlaps_batch(batch, 3)[0, 1], merge_stray_overlaps(_touching_with_speck(), 3))


def test_the_preprocessor_keeps_the_size_and_reads_older_files_as_zero(tmp_path):
    Preprocessor(min_overlap_pixels=12).save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE).min_overlap_pixels == 12
    older = Preprocessor().to_dict()
    del older["min_overlap_pixels"]
    assert Preprocessor.from_dict(older).min_overlap_pixels == 0
    with pytest.raises(ValueError, match="min_overlap_pixels must be a whole number of pixels >= 0"):
        Preprocessor(min_overlap_pixels=-1)


def _one_sided_blob() -> np.ndarray:
    """Two touching chromosomes (1: columns 1-2, 2: columns 3-6) with a 12-pixel overlap blob
    inside 2 that touches 1 along 2 of its 14 border pixels (a share of 1/7)."""
    labels = np.zeros((10, 10), np.uint8)
    labels[1:9, 1:3] = FIRST
    labels[1:9, 3:7] = SECOND
    labels[3:7, 3:6] = OVERLAP
    labels[3:5, 2] = SECOND
    return labels


def test_a_one_sided_blob_goes_to_its_chromosome_and_a_crossing_stays():
    blob = _one_sided_blob()
    parts = merge_stray_overlaps(blob, 0, 0.25)
    assert not (parts == OVERLAP).any() and (parts[3:7, 3:6] == SECOND).all()
    assert np.array_equal(merge_stray_overlaps(blob, 0, 0.1), blob)
    assert np.array_equal(merge_stray_overlaps(_crossing(), 0, 0.5), _crossing())
    assert np.array_equal(merge_stray_overlaps(blob, 12, 0.0), blob)


def test_the_preprocessor_keeps_the_border_share_and_refuses_one_out_of_range(tmp_path):
    Preprocessor(min_overlap_border_share=0.2).save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE).min_overlap_border_share == 0.2
    older = Preprocessor().to_dict()
    del older["min_overlap_border_share"]
    assert Preprocessor.from_dict(older).min_overlap_border_share == 0.0
    for wrong in (-0.1, 0.6, "0.2", True):
        with pytest.raises(ValueError, match="min_overlap_border_share must be a share from 0 to 0.5"):
            Preprocessor(min_overlap_border_share=wrong)
    assert (Preprocessor(min_overlap_border_share=0.25).finish(_one_sided_blob()) != OVERLAP).all()


def test_the_output_merges_specks_before_naming_by_area():
    """Label 1 is the smaller here; named by area while the speck is still there, the part
    holding it would be renamed. Merged first, the touching pair keeps the network's names."""
    labels = _touching_with_speck()
    swapped = np.where(labels == FIRST, SECOND, np.where(labels == SECOND, FIRST, labels))
    by_area = Preprocessor(naming="area", min_overlap_pixels=3)
    assert np.array_equal(by_area.finish(swapped), merge_stray_overlaps(swapped, 3))
    assert not np.array_equal(Preprocessor(naming="area").finish(swapped), swapped)


def test_the_sweep_scores_each_size_on_the_same_network_labels():
    truth = np.where(_touching_with_speck() == OVERLAP, SECOND, _touching_with_speck())
    pair = SimpleNamespace(labels=truth, cluster=SimpleNamespace(kind="touching"))
    real = RealPredictions("m", [pair], {"raw": [_touching_with_speck()], "masked": [truth]})
    pommier = (np.stack([_touching_with_speck()]), np.stack([truth]))
    rows = sweep_rows(Preprocessor(), [0, 3], pommier, real)
    assert [(row["min overlap pixels"], row["min border share"]) for row in rows] == [(0, 0.0), (3, 0.0)]
    assert rows[0]["Pommier Dice"] < 100 and rows[1]["Pommier Dice"] == pytest.approx(100)
    assert rows[0]["touching raw Dice"] < rows[1]["touching raw Dice"] == pytest.approx(100)
    assert rows[0]["touching masked Dice"] == rows[1]["touching masked Dice"] == pytest.approx(100)


def test_the_sweep_saves_a_copy_with_the_chosen_size_and_refuses_to_overwrite(tmp_path):
    model = create_model("amfl-small", base_width=4)
    model.save_pretrained(tmp_path / "model")
    output = Preprocessor.for_model(model, naming="area")
    output.save(tmp_path / "model")
    saved = save_with_settings(tmp_path / "model", output, 7, 0.2, tmp_path / "copy")
    expected = dataclasses.replace(Preprocessor.read(tmp_path / "model" / PREPROCESSOR_FILE), min_overlap_pixels=7, min_overlap_border_share=0.2)
    assert Preprocessor.read(saved) == expected
    assert (tmp_path / "copy" / "model.safetensors").read_bytes() == (tmp_path / "model" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        save_with_settings(tmp_path / "model", output, 7, 0.2, tmp_path / "copy")
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "5", "10", "--save_to", str(tmp_path / "other")])
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "5", "--shares", "0", "0.1", "--save_to", str(tmp_path / "other")])
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "-1"])
    with pytest.raises(SystemExit):
        parse_args(["--shares", "0.6"])
    with pytest.raises(SystemExit):
        parse_args(["--model", str(tmp_path / "model"), "--sizes", "5", "--save_to", str(tmp_path / "copy")])
