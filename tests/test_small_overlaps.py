"""Stray overlap parts (specks, one-sided or dim parts) merged into their chromosome
(amfl.small_overlaps), as a model's saved output step, and the validation sweep that chooses
its settings (amfl.overlap_sweep)."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import amfl.hub
from amfl.hub import CardEvaluation
from amfl.models import create_model
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import NetworkOutputs, parse_args, save_with_settings, settings_grid, sweep_rows
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.real_scoring import RealPredictions
from amfl.small_overlaps import StrayOverlapTests, merge_stray_overlaps, merge_stray_overlaps_batch


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


def _one_sided_blob() -> np.ndarray:
    """Two touching chromosomes (1: columns 1-2, 2: columns 3-6) with a 12-pixel overlap blob
    inside 2 that touches 1 along 2 of its 14 border pixels (a share of 1/7)."""
    labels = np.zeros((10, 10), np.uint8)
    labels[1:9, 1:3] = FIRST
    labels[1:9, 3:7] = SECOND
    labels[3:7, 3:6] = OVERLAP
    labels[3:5, 2] = SECOND
    return labels


def _seen(labels: np.ndarray, overlap_brightness: float = 1.0) -> np.ndarray:
    """An image of ``labels``: chromosomes at 0.5, overlap at ``overlap_brightness`` times that."""
    return np.where(labels == OVERLAP, 0.5 * overlap_brightness, np.where(labels > 0, 0.5, 0.0)).astype(np.float32)


def _merge(labels: np.ndarray, **tests: float) -> np.ndarray:
    return merge_stray_overlaps(labels, _seen(labels), StrayOverlapTests(**tests))


def test_a_speck_goes_to_the_chromosome_around_it_and_a_crossing_stays():
    merged = _merge(_touching_with_speck(), min_pixels=3)
    assert not (merged == OVERLAP).any()
    assert np.array_equal(merged[3, 4:6], [SECOND, SECOND])
    assert np.array_equal(_merge(_crossing(), min_pixels=9), _crossing())
    assert (_merge(_crossing(), min_pixels=10) == OVERLAP).sum() == 0


def test_no_test_keeps_every_part_and_a_lone_speck_becomes_background():
    assert np.array_equal(_merge(_touching_with_speck()), _touching_with_speck())
    lone = np.zeros((5, 5), np.uint8)
    lone[2, 2] = OVERLAP
    assert not _merge(lone, min_pixels=2).any()
    batch = np.stack([_touching_with_speck(), _touching_with_speck()])[None]
    merged = merge_stray_overlaps_batch(batch, _seen(batch), StrayOverlapTests(min_pixels=3))
    assert np.array_equal(merged[0, 1], _merge(_touching_with_speck(), min_pixels=3))


def test_a_one_sided_blob_goes_to_its_chromosome_and_a_crossing_stays():
    blob = _one_sided_blob()
    parts = _merge(blob, min_border_share=0.25)
    assert not (parts == OVERLAP).any() and (parts[3:7, 3:6] == SECOND).all()
    assert np.array_equal(_merge(blob, min_border_share=0.1), blob)
    assert np.array_equal(_merge(_crossing(), min_border_share=0.5), _crossing())
    assert np.array_equal(_merge(blob, min_pixels=12), blob)


def test_a_dim_overlap_goes_and_a_bright_crossing_stays():
    """Two stacked chromosomes give more light: a crossing 1.6 times as bright as its arms
    stays under a threshold of 1.5; as bright as its arms, it goes."""
    tests = StrayOverlapTests(min_brightness=1.5)
    crossing = _crossing()
    assert np.array_equal(merge_stray_overlaps(crossing, _seen(crossing, 1.6), tests), crossing)
    assert not (merge_stray_overlaps(crossing, _seen(crossing, 1.0), tests) == OVERLAP).any()
    assert np.array_equal(merge_stray_overlaps(crossing, _seen(crossing, 1.0), StrayOverlapTests()), crossing)


def test_the_preprocessor_keeps_the_settings_and_reads_older_files_as_off(tmp_path):
    saved = Preprocessor(min_overlap_pixels=12, min_overlap_border_share=0.2, min_overlap_brightness=1.1)
    saved.save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE) == saved
    assert saved.stray_overlap_tests == StrayOverlapTests(12, 0.2, 1.1)
    older = Preprocessor().to_dict()
    for name in ("min_overlap_pixels", "min_overlap_border_share", "min_overlap_brightness"):
        del older[name]
    assert not Preprocessor.from_dict(older).stray_overlap_tests.active
    with pytest.raises(ValueError, match="min_overlap_pixels must be a whole number of pixels >= 0"):
        Preprocessor(min_overlap_pixels=-1)
    for wrong in (-0.1, 0.6, "0.2", True):
        with pytest.raises(ValueError, match="min_overlap_border_share must be a number from 0 to 0.5"):
            Preprocessor(min_overlap_border_share=wrong)
    with pytest.raises(ValueError, match="min_overlap_brightness must be a number from 0 to 10"):
        Preprocessor(min_overlap_brightness=-1)
    blob = _one_sided_blob()
    assert (Preprocessor(min_overlap_border_share=0.25).finish(blob, _seen(blob)) != OVERLAP).all()


def test_the_output_merges_specks_before_naming_by_area():
    """Label 1 is the smaller here; named by area while the speck is still there, the part
    holding it would be renamed. Merged first, the touching pair keeps the network's names."""
    labels = _touching_with_speck()
    swapped = np.where(labels == FIRST, SECOND, np.where(labels == SECOND, FIRST, labels))
    by_area = Preprocessor(naming="area", min_overlap_pixels=3)
    assert np.array_equal(by_area.finish(swapped, _seen(swapped)), _merge(swapped, min_pixels=3))
    assert not np.array_equal(Preprocessor(naming="area").finish(swapped, _seen(swapped)), swapped)


def test_the_sweep_scores_each_setting_on_the_same_network_labels():
    speck = _touching_with_speck()
    truth = np.where(speck == OVERLAP, SECOND, speck)
    pair = SimpleNamespace(labels=truth, cluster=SimpleNamespace(kind="touching"))
    real = RealPredictions("m", [pair], {"raw": [speck], "masked": [truth]})
    outputs = NetworkOutputs(speck[None], truth[None], _seen(speck)[None], real, {"raw": [_seen(speck)], "masked": [_seen(truth)]})
    grid = settings_grid(Preprocessor(), [0, 3], [0.0], [0.0, 1.5])
    rows = sweep_rows(grid, outputs)
    assert [(row["min overlap pixels"], row["min brightness"]) for row in rows] == [(0, 0.0), (0, 1.5), (3, 0.0), (3, 1.5)]
    assert rows[0]["Pommier Dice"] < 100
    assert all(row["Pommier Dice"] == pytest.approx(100) for row in rows[1:])
    assert rows[0]["touching raw Dice"] < rows[2]["touching raw Dice"] == pytest.approx(100)
    assert rows[0]["touching masked Dice"] == rows[2]["touching masked Dice"] == pytest.approx(100)


def test_the_sweep_scores_pommier_in_the_network_frame_like_the_test():
    """A small true crossing merged away: the overlap class is then in the truth only, which
    costs the diagonal of the 128 x 128 frame the test is scored in, not of the sample."""
    crossing = _crossing()
    real = RealPredictions("m", [], {"raw": [], "masked": []})
    outputs = NetworkOutputs(crossing[None], crossing[None], _seen(crossing)[None], real, {"raw": [], "masked": []})
    kept, merged = sweep_rows(settings_grid(Preprocessor(), [0, 10], [0.0], [0.0]), outputs)
    assert kept["Pommier Hausdorff"] == 0
    assert merged["Pommier Hausdorff"] > np.hypot(127, 127) / 4


def test_the_sweep_saves_a_copy_with_the_chosen_settings_and_refuses_to_overwrite(tmp_path):
    model = create_model("amfl-small", base_width=4)
    output = Preprocessor.for_model(model, naming="area")
    scores = [CardEvaluation("me/chromosomes", {"dice": 91.25}, "python x.py")]
    amfl.hub.save_model_folder(model, tmp_path / "model", output, scores)
    chosen = settings_grid(output, [7], [0.2], [1.1])[0]
    saved = save_with_settings(tmp_path / "model", chosen, tmp_path / "copy")
    expected = dataclasses.replace(Preprocessor.read(tmp_path / "model" / PREPROCESSOR_FILE),
                                   min_overlap_pixels=7, min_overlap_border_share=0.2, min_overlap_brightness=1.1)
    assert Preprocessor.read(saved) == expected
    assert (tmp_path / "copy" / "model.safetensors").read_bytes() == (tmp_path / "model" / "model.safetensors").read_bytes()
    card = (tmp_path / "copy" / "README.md").read_text()  # the copied scores were measured through other steps
    assert "| `min_overlap_pixels` | `7` |" in card and "91.2500" not in card and "Not evaluated yet" in card
    with pytest.raises(FileExistsError, match="already exists"):
        save_with_settings(tmp_path / "model", chosen, tmp_path / "copy")
    for wrong in (["--sizes", "5", "10", "--save_to", str(tmp_path / "other")],
                  ["--sizes", "5", "--brightnesses", "1", "1.1", "--save_to", str(tmp_path / "other")],
                  ["--sizes", "5", "--part_shares", "0", "1", "--save_to", str(tmp_path / "other")],
                  ["--sizes", "5", "--piece_shares", "0", "0.5", "--save_to", str(tmp_path / "other")],
                  ["--sizes", "-1"], ["--shares", "0.6"], ["--brightnesses", "-1"], ["--part_shares", "1.5"],
                  ["--piece_shares", "-0.1"],
                  ["--model", str(tmp_path / "model"), "--sizes", "5", "--save_to", str(tmp_path / "copy")]):
        with pytest.raises(SystemExit):
            parse_args(wrong)
