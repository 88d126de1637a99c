"""The eight scores of Section II.C, the absent-class convention and the confusion matrix."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from amfl.metrics import METRIC_NAMES, confusion_matrix, hausdorff_distance, score_batch

DIAGONAL_8x8 = math.hypot(7, 7)


def brute_force_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    distances = cdist(np.argwhere(a), np.argwhere(b))
    return max(distances.min(axis=1).max(), distances.min(axis=0).max())


def random_label_maps(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Mostly background with random rectangles of labels 1-3, plus a few scattered pixels."""
    maps = np.zeros((count, size, size), dtype=np.uint8)
    for label_map in maps:
        for _ in range(rng.integers(1, 4)):
            top, left = rng.integers(0, size - 2, size=2)
            label_map[top : top + rng.integers(1, 8), left : left + rng.integers(1, 8)] = rng.integers(1, 4)
        scattered = rng.random((size, size)) < 0.01
        label_map[scattered] = rng.integers(0, 4, size=scattered.sum())
    return maps


@pytest.mark.parametrize("seed", range(20))
def test_hausdorff_matches_brute_force_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((24, 31)) < 0.1, rng.random((24, 31)) < 0.05
    assert hausdorff_distance(a, b) == pytest.approx(brute_force_hausdorff(a, b))


def test_score_batch_hausdorff_matches_brute_force_for_every_class():
    rng = np.random.default_rng(7)
    true, pred = random_label_maps(rng, 40, 20), random_label_maps(rng, 40, 20)
    pred[:10] = true[:10]  # some identical images
    hausdorff = score_batch(pred, true).per_class["hausdorff"]
    for image in range(len(true)):
        for label in range(4):
            a, b = true[image] == label, pred[image] == label
            if a.any() and b.any():
                expected = brute_force_hausdorff(a, b)
            else:
                expected = 0.0 if not (a.any() or b.any()) else math.hypot(19, 19)
            assert hausdorff[image, label] == pytest.approx(expected), (image, label)


def test_perfect_prediction_scores_perfectly_with_absent_classes_counted_perfect():
    true = np.zeros((8, 8), dtype=np.uint8)
    true[2:5, 2:5] = 1  # classes 2 and 3 absent from both maps
    means = score_batch(true, true).means
    assert means == {
        "acc": 100.0, "dice": 100.0, "iou": 100.0, "recall": 100.0,
        "precision": 100.0, "fnr": 0.0, "fpr": 0.0, "hausdorff": 0.0,
    }


def test_missed_and_invented_classes_follow_the_documented_convention():
    true = np.zeros((8, 8), dtype=np.uint8)
    true[1:3, 1:3] = 1  # class 1 only in the truth: missed
    pred = np.zeros((8, 8), dtype=np.uint8)
    pred[5:7, 5:7] = 2  # class 2 only in the prediction: invented
    scores = score_batch(pred, true).per_class
    assert scores["dice"][0, 1] == 0 and scores["recall"][0, 1] == 0 and scores["fnr"][0, 1] == 100
    assert scores["precision"][0, 1] == 100 and scores["fpr"][0, 1] == 0
    assert scores["dice"][0, 2] == 0 and scores["precision"][0, 2] == 0 and scores["recall"][0, 2] == 100
    assert scores["fpr"][0, 2] == pytest.approx(100 * 4 / 64)
    assert scores["hausdorff"][0, 1] == pytest.approx(DIAGONAL_8x8)
    assert scores["hausdorff"][0, 2] == pytest.approx(DIAGONAL_8x8)
    assert scores["dice"][0, 3] == 100 and scores["hausdorff"][0, 3] == 0  # absent from both


def test_scores_match_a_hand_counted_example():
    true = np.array([[0, 0, 1, 1], [0, 3, 3, 1], [2, 2, 3, 0], [0, 0, 0, 0]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 3, 1, 1], [2, 2, 3, 0], [0, 0, 0, 2]], dtype=np.uint8)
    scores = score_batch(pred, true)
    # Class 1: TP 3, FP 2, FN 0. Class 3: TP 2, FN 1. Class 0: TP 6, FN 2. Class 2: TP 2, FP 1.
    assert scores.per_class["dice"][0].tolist() == pytest.approx([100 * 12 / 14, 75, 80, 80])
    assert scores.per_class["iou"][0].tolist() == pytest.approx([75, 60, 200 / 3, 200 / 3])
    assert scores.means["acc"] == pytest.approx(100 * 13 / 16)
    assert scores.means["dice"] == pytest.approx(np.mean([100 * 12 / 14, 75, 80, 80]))
    assert scores.per_class["precision"][0, 1] == pytest.approx(60)
    assert scores.per_class["fpr"][0, 1] == pytest.approx(100 * 2 / 13)
    assert scores.confusion.tolist() == [[6, 1, 1, 0], [0, 3, 0, 0], [0, 0, 2, 0], [0, 1, 0, 2]]


def test_means_average_per_image_scores_over_images():
    rng = np.random.default_rng(2)
    true, pred = random_label_maps(rng, 6, 16), random_label_maps(rng, 6, 16)
    together = score_batch(pred, true)
    alone = [score_batch(pred[i], true[i]).means for i in range(6)]
    for name in METRIC_NAMES:
        assert together.means[name] == pytest.approx(np.mean([scores[name] for scores in alone]))
    assert together.class_iou.shape == (4,)
    assert set(together.summary()) == set(METRIC_NAMES) | {"iou_class_1", "iou_class_2", "iou_class_3"}


def test_confusion_matrix_counts_pixels_with_true_rows():
    true = np.array([[0, 1], [2, 3]])
    pred = np.array([[1, 1], [2, 0]])
    matrix = confusion_matrix(pred, true)
    assert matrix.tolist() == [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]
    percent = score_batch(pred, true).confusion_percent
    assert percent[0].tolist() == [0, 100, 0, 0]


@pytest.mark.parametrize(
    ("pred", "true", "message"),
    [
        (np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 5), np.uint8), "same shape"),
        (np.full((4, 4), 4, np.uint8), np.zeros((4, 4), np.uint8), r"labels \[4\]"),
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), "argmax"),
        (np.zeros((1, 1, 4, 4), np.uint8), np.zeros((1, 1, 4, 4), np.uint8), r"\(N, H, W\)"),
    ],
)
def test_bad_label_maps_get_clear_errors(pred, true, message):
    with pytest.raises(ValueError, match=message):
        score_batch(pred, true)
