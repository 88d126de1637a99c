"""The case bootstrap centres on the mean paired difference and widens with the spread
between cases, not between pairs of one case."""

import numpy as np
import pytest

from amfl.case_bootstrap import case_bootstrap


def test_a_constant_difference_has_no_spread():
    interval = case_bootstrap([2.0] * 6, ["a", "a", "b", "b", "c", "c"])
    assert (interval.mean, interval.low, interval.high) == pytest.approx((2.0, 2.0, 2.0))


def test_the_interval_holds_the_mean_and_follows_the_seed():
    rng = np.random.default_rng(1)
    differences = rng.normal(1.0, 3.0, size=40)
    cases = [f"case{index % 8}" for index in range(40)]
    interval = case_bootstrap(differences, cases, draws=500, seed=3)
    assert interval.mean == pytest.approx(differences.mean())
    assert interval.low < interval.mean < interval.high
    assert case_bootstrap(differences, cases, draws=500, seed=3) == interval
    assert case_bootstrap(differences, cases, draws=500, seed=4) != interval


def test_pairs_of_one_case_move_together():
    # Within each case every pair agrees; the cases disagree. Resampled as single pairs
    # the spread would shrink with the 10 pairs per case; drawn by case it must not.
    per_case = np.array([-4.0, 6.0, -2.0, 8.0])
    differences = np.repeat(per_case, 10)
    cases = np.repeat(["a", "b", "c", "d"], 10).tolist()
    by_case = case_bootstrap(differences, cases, draws=4000, seed=0)
    by_pair = case_bootstrap(differences, [str(index) for index in range(40)], draws=4000, seed=0)
    assert by_case.high - by_case.low > 2 * (by_pair.high - by_pair.low)
    assert by_case.low < 0 < by_case.high


def test_bad_input_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="one case per difference"):
        case_bootstrap([1.0, 2.0], ["a"])
    with pytest.raises(ValueError, match="no differences"):
        case_bootstrap([], [])
    with pytest.raises(ValueError, match="draws must be 1 or more"):
        case_bootstrap([1.0], ["a"], draws=0)
