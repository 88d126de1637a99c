"""``amfl.crossing_arms``: the four arms around a crossing named straight through, and the
``Preprocessor.crossing_arms`` and ``crossing_arm_reach`` settings that turn the step on and
keep slivers beside a painted overlap from counting as arms."""

import numpy as np
import pytest

from amfl.crossing_arms import name_straight_through, name_straight_through_batch
from amfl.naming import FIRST, OVERLAP, SECOND, swap_names
from amfl.overlap_sweep import NetworkOutputs, parse_args, settings_grid, sweep_rows
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import RealPredictions

SIZE = 64


def bar(start: tuple[float, float], end: tuple[float, float], width: float = 7.0) -> np.ndarray:
    """A (SIZE, SIZE) mask of the pixels within ``width / 2`` of the segment from ``start`` to
    ``end`` ((row, column) points): one straight chromosome."""
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(float)
    start_point, direction = np.array(start), np.subtract(end, start)
    along = ((rows - start_point[0]) * direction[0] + (cols - start_point[1]) * direction[1]) / (direction @ direction)
    along = np.clip(along, 0, 1)
    return np.hypot(rows - start_point[0] - along * direction[0], cols - start_point[1] - along * direction[1]) <= width / 2


def pair_map(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The label map of two chromosome masks: 1 and 2 where each lies alone, 3 where both do."""
    labels = np.zeros((SIZE, SIZE), np.uint8)
    labels[first] = FIRST
    labels[second] = SECOND
    labels[first & second] = OVERLAP
    return labels


@pytest.mark.parametrize(("first_ends", "second_ends"), [
    (((32, 4), (32, 60)), ((4, 32), (60, 32))),  # a plus
    (((10, 6), (54, 58)), ((8, 40), (58, 22))),  # a slanted X, the chromosomes about 65 degrees apart
])
def test_an_arm_beyond_the_crossing_named_as_the_partner_gets_its_own_name_back(first_ends, second_ends):
    first, second = bar(*first_ends), bar(*second_ends)
    truth = pair_map(first, second)
    far_end = np.zeros_like(first)
    far_end[:, 40:] = True
    wrong = truth.copy()
    wrong[first & ~second & far_end] = SECOND  # the first chromosome's right arm called the second
    assert (wrong != truth).sum() > 50
    np.testing.assert_array_equal(name_straight_through(wrong), truth)


def test_a_crossing_named_straight_through_already_is_left_as_it_is():
    truth = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (60, 32)))
    assert name_straight_through(truth) is truth


def test_an_arm_of_mixed_names_takes_one_and_the_pairs_take_the_names_that_change_least():
    truth = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (60, 32)))
    wrong = truth.copy()
    wrong[2:12, 25:40][truth[2:12, 25:40] == SECOND] = FIRST  # the top arm's tip called the first
    np.testing.assert_array_equal(name_straight_through(wrong), truth)
    swapped = swap_names(truth)
    patched = swapped.copy()
    patched[32:40, 50:60][swapped[32:40, 50:60] == SECOND] = FIRST
    # named the other way round throughout: the names that change fewest pixels stay, whatever the truth's
    np.testing.assert_array_equal(name_straight_through(patched), swapped)


def test_three_arms_two_overlaps_or_no_overlap_keep_their_names():
    t_shape = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (30, 32)))  # the second ends on the first
    t_shape[(t_shape == FIRST) & (np.arange(SIZE) > 40)] = SECOND
    assert name_straight_through(t_shape) is t_shape
    twice = pair_map(bar((20, 4), (20, 60)) | bar((44, 4), (44, 60)), bar((4, 32), (60, 32)))
    twice[twice == FIRST] = SECOND
    assert name_straight_through(twice) is twice
    touching = pair_map(bar((20, 4), (20, 60)), bar((27, 4), (27, 60)))
    touching[touching == OVERLAP] = SECOND
    assert name_straight_through(touching) is touching


def test_only_the_crossing_cluster_is_renamed_and_the_batch_step_can_be_off():
    crossing = pair_map(bar((32, 4), (32, 40)), bar((14, 22), (50, 22)))
    wrong = crossing.copy()
    wrong[(crossing == FIRST) & (np.arange(SIZE) > 28)] = SECOND
    wrong[4:10, 50:60] = SECOND  # a neighbour that is no crossing
    renamed = name_straight_through(wrong)
    np.testing.assert_array_equal(renamed[:, :45], crossing[:, :45])
    np.testing.assert_array_equal(renamed[4:10, 50:60], SECOND)
    stack = np.stack([wrong, crossing])
    assert name_straight_through_batch(stack, False) is stack
    np.testing.assert_array_equal(name_straight_through_batch(stack, True), np.stack([renamed, crossing]))


def test_the_preprocessor_applies_the_step_to_a_crop_and_not_to_a_whole_field():
    truth = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (60, 32)))
    wrong = truth.copy()
    wrong[(truth == FIRST) & (np.arange(SIZE) > 40)] = SECOND
    images = (truth > 0).astype(np.float32)
    output = Preprocessor(crossing_arms=True)
    np.testing.assert_array_equal(output.finish(wrong, images), truth)
    np.testing.assert_array_equal(output.finish(wrong, images, whole_field=True), wrong)
    np.testing.assert_array_equal(Preprocessor().finish(wrong, images), wrong)


def blob_between_ends() -> np.ndarray:
    """Two chromosomes end to end (rows 4-20 and 44-60) with an overlap part painted between
    them, and a 3-pixel sliver of each name along its sides: four pieces around one overlap,
    the two slivers reaching 3 pixels from it."""
    labels = np.zeros((SIZE, SIZE), np.uint8)
    labels[4:21, 28:37] = FIRST
    labels[44:61, 28:37] = SECOND
    labels[24:41, 23:26] = SECOND
    labels[24:41, 39:42] = FIRST
    labels[21:44, 26:39] = OVERLAP
    return labels


def test_slivers_along_a_painted_overlap_are_no_arms_when_arms_must_reach_further():
    blob = blob_between_ends()
    # every piece taken, the slivers make a plus of four arms and the ends are renamed alike
    renamed = name_straight_through(blob)
    assert renamed[10, 32] == renamed[50, 32] and (renamed != blob).sum() > 100
    assert name_straight_through(blob, min_reach=4) is blob
    assert name_straight_through(blob, min_reach=3) is not blob
    # a true crossing's arms reach far: the reach leaves its renaming as it was
    truth = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (60, 32)))
    wrong = truth.copy()
    wrong[(truth == FIRST) & (np.arange(SIZE) > 40)] = SECOND
    np.testing.assert_array_equal(name_straight_through(wrong, min_reach=12), truth)
    images = (blob > 0).astype(np.float32)
    np.testing.assert_array_equal(Preprocessor(crossing_arms=True, crossing_arm_reach=4).finish(blob, images), blob)
    np.testing.assert_array_equal(Preprocessor(crossing_arms=True).finish(blob, images), renamed)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_crossing_arms_setting_that_is_not_true_or_false_is_refused(value):
    with pytest.raises(ValueError, match="crossing_arms must be true or false"):
        Preprocessor.from_dict({"crossing_arms": value})


@pytest.mark.parametrize("value", [-1, 2.5, True, "4"])
def test_an_arm_reach_that_is_not_a_whole_number_of_pixels_is_refused(value):
    with pytest.raises(ValueError, match="crossing_arm_reach must be a whole number of pixels >= 0"):
        Preprocessor.from_dict({"crossing_arm_reach": value})


def test_the_sweep_scores_the_step_off_and_on_and_saves_only_one_choice(tmp_path):
    truth = pair_map(bar((32, 4), (32, 60)), bar((4, 32), (60, 32)))
    wrong = truth.copy()
    wrong[(truth == FIRST) & (np.arange(SIZE) > 40)] = SECOND
    seen = (truth > 0).astype(np.float32)
    no_real = RealPredictions("m", [], {"raw": [], "masked": []})
    outputs = NetworkOutputs(wrong[None], truth[None], seen[None], no_real, {"raw": [], "masked": []})
    off, on = sweep_rows(settings_grid(Preprocessor(), [0], [0.0], [0.0], crossing_arms=(False, True)), outputs)
    assert (off["crossing arms"], on["crossing arms"]) == (0, 1)
    assert off["Pommier Dice"] < 90 and on["Pommier Dice"] == pytest.approx(100)
    grid = settings_grid(Preprocessor(), [0], [0.0], [0.0], crossing_arms=(False, True), arm_reaches=(0, 4))
    assert [(output.crossing_arms, output.crossing_arm_reach) for output in grid] == [(False, 0), (True, 0), (True, 4)]
    assert [row["arm reach"] for row in sweep_rows(grid, outputs)] == [0, 0, 4]
    for wrong_args in (["--crossing_arms", "2"], ["--crossing_arms", "0", "1", "--save_to", str(tmp_path / "copy")],
                       ["--arm_reaches", "-1"], ["--crossing_arms", "1", "--arm_reaches", "0", "4", "--save_to", str(tmp_path / "copy")],
                       ["--arm_reaches", "3"]):
        with pytest.raises(SystemExit):
            parse_args(wrong_args)
    assert parse_args(["--crossing_arms", "0", "1", "--arm_reaches", "3"]).arm_reaches == [3]
