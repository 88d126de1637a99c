"""``amfl.covered_chromosomes``: a chromosome of a few pixels beside an overlap given to the overlap
(it lies wholly under its partner), and the ``Preprocessor.min_chromosome_pixels`` setting and
sweep option that choose how few."""

import numpy as np
import pytest

from amfl.covered_chromosomes import merge_covered_chromosomes, merge_covered_chromosomes_batch
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import NetworkOutputs, parse_args, settings_grid, sweep_rows
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import RealPredictions


def covered_pair(speck: int = 3) -> np.ndarray:
    """A (32, 32) map of one long chromosome (2) with a small one lying wholly on it (the
    overlap, 3), and a speck of ``speck`` pixels of the small one's name (1) at the overlap's
    rim: what the network paints where the truth has no pixel of name 1."""
    labels = np.zeros((32, 32), np.uint8)
    labels[4:28, 12:20] = SECOND
    labels[12:18, 12:20] = OVERLAP
    labels[18, 12:12 + speck] = FIRST
    return labels


def test_a_speck_beside_the_overlap_becomes_overlap_when_smaller_than_the_setting():
    labels = covered_pair(speck=3)
    merged = merge_covered_chromosomes(labels, 4)
    assert not (merged == FIRST).any()
    assert (merged[18, 12:15] == OVERLAP).all()
    np.testing.assert_array_equal(merged[labels != FIRST], labels[labels != FIRST])
    assert merge_covered_chromosomes(labels, 3) is labels  # 3 pixels is not fewer than 3
    assert merge_covered_chromosomes(labels, 0) is labels


def test_only_the_name_that_is_small_in_its_own_cluster_is_merged():
    labels = np.zeros((32, 64), np.uint8)
    labels[:, :32] = covered_pair(speck=2)
    crossing = np.zeros((32, 32), np.uint8)
    crossing[14:18, 2:30] = FIRST
    crossing[2:30, 14:18] = SECOND
    crossing[14:18, 14:18] = OVERLAP
    labels[:, 32:] = crossing
    merged = merge_covered_chromosomes(labels, 10)
    np.testing.assert_array_equal(merged[:, 32:], crossing)  # 96 pixels of name 1 there: kept
    assert not (merged[:, :32] == FIRST).any()


def test_a_cluster_without_overlap_keeps_a_small_chromosome():
    touching = np.zeros((32, 32), np.uint8)
    touching[4:28, 12:20] = SECOND
    touching[28:30, 12:14] = FIRST  # a tiny chromosome end to end with the long one
    assert merge_covered_chromosomes(touching, 10) is touching


def test_the_batch_merges_each_map_and_the_preprocessor_applies_it_to_crops_only():
    stack = np.stack([covered_pair(3), covered_pair(6)])
    merged = merge_covered_chromosomes_batch(stack, 5)
    assert not (merged[0] == FIRST).any() and (merged[1] == FIRST).sum() == 6
    images = (stack > 0).astype(np.float32)
    output = Preprocessor(min_chromosome_pixels=5)
    np.testing.assert_array_equal(output.finish(stack, images), merged)
    np.testing.assert_array_equal(output.finish(stack, images, whole_field=True), stack)
    assert output.without_crop_steps().min_chromosome_pixels == 0


@pytest.mark.parametrize("value", [-1, 2.5, True, "4"])
def test_a_min_chromosome_pixels_that_is_not_a_whole_number_of_pixels_is_refused(value):
    with pytest.raises(ValueError, match="min_chromosome_pixels must be a whole number of pixels >= 0"):
        Preprocessor.from_dict({"min_chromosome_pixels": value})


def test_the_sweep_scores_each_size_and_refuses_a_negative_one(tmp_path):
    truth = covered_pair(0)
    predicted = covered_pair(3)
    seen = (truth > 0).astype(np.float32)
    no_real = RealPredictions("m", [], {"raw": [], "masked": []})
    outputs = NetworkOutputs(predicted[None], truth[None], seen[None], no_real, {"raw": [], "masked": []})
    grid = settings_grid(Preprocessor(), [0], [0.0], [0.0], chromosome_pixels=(0, 4))
    kept, merged = sweep_rows(grid, outputs)
    assert (kept["min chromosome pixels"], merged["min chromosome pixels"]) == (0, 4)
    assert kept["Pommier Dice"] < 80 and merged["Pommier Dice"] > 98
    assert kept["Pommier Hausdorff"] > 40 and merged["Pommier Hausdorff"] < 2
    for wrong_args in (["--chromosome_pixels", "-1"],
                       ["--chromosome_pixels", "0", "4", "--save_to", str(tmp_path / "copy")]):
        with pytest.raises(SystemExit):
            parse_args(wrong_args)
    assert parse_args(["--chromosome_pixels", "0", "5"]).chromosome_pixels == [0, 5]
