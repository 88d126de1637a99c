"""amfl.piece_names: a small piece of one name cut off from its body and lying against the
partner takes the partner's name; bodies, far pieces and whole fields keep theirs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import NetworkOutputs, settings_grid, sweep_rows
from amfl.piece_names import rename_cut_pieces, rename_cut_pieces_batch
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import RealPredictions


def _crossing(top: int = 0, left: int = 0, size: int = 40) -> np.ndarray:
    """A cross in a ``size`` square map at (top, left): chromosome 1 upright (cols 18-20,
    rows 8-31), 2 across (rows 18-20, cols 6-33), overlap where they meet."""
    labels = np.zeros((size, size), np.uint8)
    labels[top + 8:top + 32, left + 18:left + 21] = FIRST
    labels[top + 18:top + 21, left + 6:left + 34] = SECOND
    labels[top + 18:top + 21, left + 18:left + 21] = OVERLAP
    return labels


def _misnamed_arm_end(labels: np.ndarray, top: int = 0, left: int = 0) -> np.ndarray:
    """``labels`` with the last 4 columns of 2's right arm painted 1: a piece of 1 cut off
    from 1's body (12 px against 1's 72 with the overlap), lying against 2's body."""
    painted = labels.copy()
    painted[top + 18:top + 21, left + 30:left + 34] = FIRST
    return painted


def test_a_small_piece_against_the_partner_takes_its_name():
    truth = _crossing()
    painted = _misnamed_arm_end(truth)
    renamed = rename_cut_pieces(painted, 0.5)
    assert np.array_equal(renamed, truth)
    assert renamed.dtype == painted.dtype


def test_the_share_says_how_large_a_renamed_piece_may_be():
    """The piece holds 12 px against its body's 72 (a share of 1/6): renamed at 0.2, kept at 0.1."""
    painted = _misnamed_arm_end(_crossing())
    assert np.array_equal(rename_cut_pieces(painted, 0.2), _crossing())
    assert np.array_equal(rename_cut_pieces(painted, 0.1), painted)


def test_a_share_of_zero_and_names_in_one_piece_leave_the_map_as_it_is():
    painted = _misnamed_arm_end(_crossing())
    assert rename_cut_pieces(painted, 0.0) is painted
    assert np.array_equal(rename_cut_pieces(_crossing(), 1.0), _crossing())


def test_a_piece_away_from_the_partner_keeps_its_name():
    """A piece of 1 in its own cluster (a speck apart from the pair) touches no body of 2."""
    labels = _crossing()
    labels[2:4, 2:4] = FIRST
    assert np.array_equal(rename_cut_pieces(labels, 1.0), labels)


def test_each_cluster_has_its_own_bodies():
    """Two pairs side by side in one map: the second pair's upright 1 is the body of its own
    cluster, not a piece cut off from the first pair's, and only its misnamed arm end is renamed."""
    labels = np.concatenate([_crossing(), _crossing()], axis=1)
    painted = _misnamed_arm_end(labels, left=40)
    renamed = rename_cut_pieces(painted, 0.5)
    assert np.array_equal(renamed, labels)


def test_every_map_of_a_stack_is_renamed_on_its_own():
    painted = _misnamed_arm_end(_crossing())
    stack = np.stack([painted, np.fliplr(painted)])
    assert np.array_equal(rename_cut_pieces_batch(stack, 0.5), np.stack([_crossing(), np.fliplr(_crossing())]))


def test_the_output_renames_pieces_in_a_crop_before_naming_but_not_in_a_whole_field():
    """Renamed before the naming by area: with the arm end back, 1 (72 px with the overlap) is
    smaller than 2 (84), so the area naming keeps the names."""
    painted = _misnamed_arm_end(_crossing())
    seen = (painted > 0).astype(np.float32)
    output = Preprocessor(cut_piece_share=0.5, naming="area")
    assert np.array_equal(output.finish(painted, seen), _crossing())
    assert np.array_equal(output.finish(painted, seen, whole_field=True), Preprocessor(naming="area").finish(painted, seen))


def test_the_sweep_scores_each_piece_share_on_the_same_network_labels():
    truth = _crossing()
    painted = _misnamed_arm_end(truth)
    pair = SimpleNamespace(labels=truth, cluster=SimpleNamespace(kind="overlapping"))
    seen = {"raw": [(painted > 0).astype(np.float32)], "masked": [(painted > 0).astype(np.float32)]}
    real = RealPredictions("m", [pair], {"raw": [painted], "masked": [painted]})
    outputs = NetworkOutputs(painted[None], truth[None], seen["masked"][0][None], real, seen)
    rows = sweep_rows(settings_grid(Preprocessor(), [0], [0.0], [0.0], [0.0], [0.0, 0.5]), outputs)
    assert [row["cut piece share"] for row in rows] == [0.0, 0.5]
    assert rows[0]["overlapping raw Dice"] < rows[1]["overlapping raw Dice"] == pytest.approx(100)
    assert rows[0]["Pommier Dice"] < rows[1]["Pommier Dice"] == pytest.approx(100)
