"""amfl.real_scoring: per-image scores on real pairs, strict naming, and the trivial floor."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from amfl.data.real_pairs import Cluster, RealPair
from amfl.real_scoring import FLOOR_NAME, floor_labels, mean_scores, score_floor, score_model


def _pair(kind: str, labels: np.ndarray) -> RealPair:
    cluster = Cluster("A0101XY", "A01__XY", kind, (0, 0, *labels.shape), (1, 2), int((labels == 3).sum()))
    grey = (labels > 0).astype(np.uint8) * 200
    return RealPair(cluster, grey, grey, labels)


def _overlapping_labels() -> np.ndarray:
    labels = np.zeros((20, 20), np.uint8)
    labels[2:18, 9:12] = 2  # 48 pixels
    labels[9:12, 5:15] = 1
    labels[9:12, 9:12] = 3  # 9 overlap pixels; class 1 keeps 21
    return labels


def test_the_floor_calls_every_chromosome_pixel_the_larger_chromosome():
    labels = _overlapping_labels()
    floor = floor_labels(labels)
    assert set(np.unique(floor).tolist()) == {0, 2} and ((floor == 2) == (labels > 0)).all()
    scores = mean_scores([floor], [labels])
    class_2 = 2 * 39 / (39 + 69) * 100  # truth class 2: 48 - 9 = 39 px; predicted: all 69 px
    assert scores["dice"] == pytest.approx((100 + 0 + class_2 + 0) / 4)


def test_naming_is_strict_a_swapped_prediction_scores_as_wrong():
    labels = _overlapping_labels()
    swapped = np.choose(labels, [0, 2, 1, 3]).astype(np.uint8)
    assert mean_scores([labels], [labels])["dice"] == 100
    assert mean_scores([swapped], [labels])["dice"] < 60


def test_images_of_different_sizes_are_scored_each_at_its_own_size():
    small, large = _overlapping_labels(), np.pad(_overlapping_labels(), 30)
    both = mean_scores([small, floor_labels(large)], [small, large])
    assert both["dice"] == pytest.approx((100 + mean_scores([floor_labels(large)], [large])["dice"]) / 2)


def test_models_are_scored_per_kind_and_input_and_the_floor_once():
    touching = np.roll(_overlapping_labels(), 3, axis=1)  # another picture, so the oracle tells them apart
    touching[touching == 3] = 1
    pairs = [_pair("overlapping", _overlapping_labels()), _pair("touching", touching)]
    perfect = SimpleNamespace(segment_grey=lambda grey: SimpleNamespace(labels=next(
        pair.labels for pair in pairs if np.array_equal(pair.raw, grey.astype(np.uint8)))))
    rows = score_model("oracle", perfect, pairs)
    assert [(row.kind, row.input, row.images) for row in rows] == [
        ("overlapping", "raw", 1), ("overlapping", "masked", 1), ("touching", "raw", 1), ("touching", "masked", 1),
    ]
    assert all(row.means["dice"] == 100 and row.means["hausdorff"] == 0 for row in rows)
    floor = score_floor(pairs)
    assert [(row.model, row.kind, row.input) for row in floor] == [
        (FLOOR_NAME, "overlapping", "any"), (FLOOR_NAME, "touching", "any"),
    ]
    assert all(row.means["dice"] < 100 for row in floor)
