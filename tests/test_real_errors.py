"""The real-pair error breakdown counts each pixel outcome once and its naming what-ifs
rename the right parts."""

from types import SimpleNamespace

import numpy as np
import pytest

from amfl.markdown import records_table
from amfl.naming import OVERLAP, name_by_area, swap_names
from amfl.real_errors import (
    OUTCOMES,
    comparison_rows,
    error_rows,
    main,
    merge_overlap_off_truth,
    name_pieces_by_truth,
    parse_args,
    pixel_outcomes,
)
from amfl.real_scoring import RealPredictions


def _pair_truth() -> np.ndarray:
    """A 6 x 8 truth: chromosome 1 (8 px), chromosome 2 (12 px) sharing 4 overlap pixels."""
    truth = np.zeros((6, 8), np.uint8)
    truth[1:5, 1:3] = 1
    truth[1:5, 4:7] = 2
    truth[1:5, 3] = 3
    return truth


def test_pixel_outcomes_count_each_kind_of_error():
    truth = _pair_truth()
    predicted = truth.copy()
    predicted[1, 1] = 0  # missed
    predicted[2, 1] = 2  # misnamed
    predicted[3, 1] = 3  # overlap painted
    predicted[1, 3] = 2  # overlap missed
    predicted[0, 0] = 1  # background painted
    counts = pixel_outcomes(predicted, truth)
    assert counts == {
        "right": 24 - 4, "missed": 1, "misnamed": 1, "overlap painted": 1, "overlap missed": 1,
        "background painted": 1, "chromosome": 24,
    }
    assert sum(counts[name] for name in OUTCOMES[:-1]) == counts["chromosome"]


def test_swap_names_only_inside_the_given_region():
    labels = np.array([[1, 2, 3, 0], [1, 2, 3, 0]], np.uint8)
    assert swap_names(labels).tolist() == [[2, 1, 3, 0], [2, 1, 3, 0]]
    top = np.array([[True] * 4, [False] * 4])
    assert swap_names(labels, top).tolist() == [[2, 1, 3, 0], [1, 2, 3, 0]]


def test_name_by_area_renames_parts_with_overlap_whose_first_chromosome_is_larger():
    wrong = swap_names(_pair_truth())  # label 1 now the larger chromosome
    assert np.array_equal(name_by_area(wrong), _pair_truth())
    assert np.array_equal(name_by_area(_pair_truth()), _pair_truth())
    touching = np.zeros((4, 8), np.uint8)
    touching[1:3, 0:5], touching[1:3, 5:7] = 1, 2  # no overlap: left as predicted
    assert np.array_equal(name_by_area(touching), touching)
    both = np.concatenate([wrong, np.zeros((1, 8), np.uint8), touching])
    assert np.array_equal(name_by_area(both), np.concatenate([_pair_truth(), np.zeros((1, 8), np.uint8), touching]))


def _predictions(labels: np.ndarray) -> RealPredictions:
    pair = SimpleNamespace(cluster=SimpleNamespace(kind="overlapping"), labels=_pair_truth())
    return RealPredictions("model", [pair], {"raw": [labels], "masked": [_pair_truth()]})


def test_best_piece_naming_renames_each_piece_by_its_truth_majority():
    """The lower half of chromosome 2 painted 1 is a piece of 1 apart from 1's own body: it
    goes back to 2, while 1's body keeps its name and a piece over background alone is left."""
    truth = _pair_truth()
    painted = truth.copy()
    painted[3:5, 4:7] = 1
    painted[0, 7] = 2
    named = name_pieces_by_truth(painted, truth)
    expected = truth.copy()
    expected[0, 7] = 2
    np.testing.assert_array_equal(named, expected)


def test_only_overlap_parts_over_no_truth_overlap_are_merged():
    """A touching truth (no overlap): an overlap blob painted inside chromosome 2 goes back to
    2; on the crossing truth the real overlap part stays, a second one off it is merged."""
    touching = _pair_truth()
    touching[touching == OVERLAP] = 1
    painted = touching.copy()
    painted[2:4, 5] = OVERLAP
    np.testing.assert_array_equal(merge_overlap_off_truth(painted, touching), touching)
    crossing = _pair_truth()
    painted = crossing.copy()
    painted[1, 5] = OVERLAP
    np.testing.assert_array_equal(merge_overlap_off_truth(painted, crossing), crossing)
    assert merge_overlap_off_truth(crossing, touching)[1:5, 3].tolist() == [1, 1, 1, 1]


def test_error_rows_score_a_swapped_prediction_and_its_repairs():
    rows = {row["input"]: row for row in error_rows(_predictions(swap_names(_pair_truth())))}
    assert set(rows) == {"raw", "masked"}  # no touching pairs: no touching rows
    raw, masked = rows["raw"], rows["masked"]
    assert raw["misnamed"] == pytest.approx(100 * 20 / 24) and raw["right"] == pytest.approx(100 * 4 / 24)
    assert raw["dice"] == pytest.approx(50)  # background and overlap right, both chromosomes wrong
    assert raw["dice best naming"] == pytest.approx(100) and raw["dice named by area"] == pytest.approx(100)
    assert raw["dice best piece naming"] == pytest.approx(100)
    assert raw["dice no stray overlap"] == pytest.approx(50)  # its overlap lies on the truth's
    assert masked["right"] == pytest.approx(100) and masked["dice"] == pytest.approx(100)
    assert records_table(list(rows.values())).splitlines()[2].startswith("| overlapping | raw | 1 | 16.7 |")


def _two_case_pairs() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(cluster=SimpleNamespace(kind="overlapping", case=case), labels=_pair_truth())
        for case in ("a", "a", "b")
    ]


def _two_case_predictions(pairs: list[SimpleNamespace], raw: list[np.ndarray]) -> RealPredictions:
    return RealPredictions("model", pairs, {"raw": raw, "masked": [_pair_truth()] * 3})


def test_comparison_rows_give_each_model_its_dice_and_the_difference():
    right, swapped = _pair_truth(), swap_names(_pair_truth())
    pairs = _two_case_pairs()
    better = _two_case_predictions(pairs, [right, right, right])
    worse = _two_case_predictions(pairs, [swapped, right, swapped])
    rows = {row["input"]: row for row in comparison_rows(better, worse, draws=200)}
    raw = rows["raw"]
    assert (raw["cases"], raw["pairs"]) == (2, 3)
    assert raw["dice"] == pytest.approx(100) and raw["dice against"] == pytest.approx(100 * 2 / 3)
    assert raw["difference"] == pytest.approx(100 / 3)
    assert raw["95% low"] == pytest.approx(25) and raw["95% high"] == pytest.approx(50)  # case a averages +25 a pair, case b +50
    assert rows["masked"]["difference"] == pytest.approx(0)


def test_comparison_rows_refuse_different_pairs():
    with pytest.raises(ValueError, match="same pairs"):
        comparison_rows(*(_two_case_predictions(_two_case_pairs(), [_pair_truth()] * 3) for _ in range(2)))


def test_draws_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--draws", "0"])
    assert "--draws must be 1 or more" in capsys.readouterr().err


def test_main_names_a_missing_model_before_any_work(tmp_path, capsys):
    assert main(["--against", str(tmp_path / "missing")]) == 2
    assert "cannot load model" in capsys.readouterr().err


def test_main_without_the_adir_folder_says_where_to_point_it(tmp_path, capsys):
    assert main(["--adir", str(tmp_path)]) == 2
    assert "not the ADIR metaphase folder" in capsys.readouterr().err
