"""amfl.part_counter and amfl.train_part_counter: the boosted trees copied out of scikit-learn
give its scores, survive a save and load, refuse files that do not match; and the metaphase
pipeline uses the counter's answers (no chromosome: merged into a neighbour, or set aside)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from amfl.metaphase import _absorb_empty_parts, analyse_metaphase
from amfl.metaphase_features import FEATURES, Part
from amfl.part_counter import BUNDLED_PART_COUNTER, CONFIG_FILE, PartCounter, load_part_counter
from amfl.segmentation import Segmenter
from amfl.train_part_counter import CLASSES, fit
from conftest import BUNDLED_MODEL
from test_metaphase import synthetic_metaphase


@pytest.fixture(scope="module")
def table():
    """Rows whose class follows two features (so the trees have something to learn)."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, len(FEATURES)))
    truth = np.digitize(features[:, 1] + 0.5 * features[:, 3], [-1.2, 0.6, 1.4, 1.9])
    names = [f"m{i % 8}" for i in range(len(truth))]
    return features, truth, names


@pytest.fixture(scope="module")
def fitted(table):
    features, truth, names = table
    return fit(features, truth, names, "test")


def test_copied_trees_give_scikit_learns_probabilities(table, fitted):
    from sklearn.ensemble import GradientBoostingClassifier

    from amfl import train_part_counter as training

    features, truth, _ = table
    model = GradientBoostingClassifier(
        n_estimators=training.N_ESTIMATORS, max_depth=training.MAX_DEPTH, learning_rate=training.LEARNING_RATE,
        subsample=training.SUBSAMPLE, random_state=training.SEED,
    ).fit(features, truth)
    fresh = np.random.default_rng(1).normal(size=(50, len(FEATURES)))
    np.testing.assert_allclose(fitted.probabilities(fresh), model.predict_proba(fresh), atol=1e-9)
    assert (fitted.counts(fresh)[0] == model.predict(fresh)).all()
    assert fitted.config.metaphases == 8 and fitted.config.min_parts == 50


def test_save_and_load_give_the_same_answers(tmp_path, table, fitted):
    fitted.save(tmp_path)
    loaded = PartCounter.load(tmp_path)
    np.testing.assert_array_equal(loaded.probabilities(table[0]), fitted.probabilities(table[0]))
    assert loaded.config == fitted.config


def test_a_missing_file_or_other_features_are_clear_errors(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="no part counter in .*config.json is missing"):
        PartCounter.load(tmp_path)
    other = dataclasses.replace(fitted.config, features=FEATURES[:-1])
    with pytest.raises(ValueError, match="refit it with python -m amfl.train_part_counter"):
        PartCounter(other, fitted.init, fitted.trees)


def test_every_class_needs_a_training_example(table):
    features, truth, names = table
    with pytest.raises(ValueError, match=r"no example of class\(es\) \[4\]"):
        fit(features, np.minimum(truth, 3), names)


def test_the_bundled_counter_loads_and_counts_in_its_classes():
    counter = load_part_counter()
    assert (BUNDLED_PART_COUNTER / CONFIG_FILE).is_file() and counter.config.features == FEATURES
    numbers, chances = counter.counts(np.zeros((3, len(FEATURES))))
    assert set(numbers.tolist()) <= set(CLASSES) and ((chances > 0) & (chances <= 1)).all()


def _part(mask: np.ndarray, siblings: int) -> Part:
    return Part(1, (slice(0, mask.shape[0]), slice(0, mask.shape[1])), mask, siblings, ends=2)


def test_a_part_with_no_chromosome_joins_the_part_it_touches_most():
    canvas = np.zeros((10, 30), bool)
    left, middle, right = canvas.copy(), canvas.copy(), canvas.copy()
    # The middle part borders the left one along 6 rows and the right one along 3.
    left[2:8, 0:10], middle[2:8, 10:14], right[5:8, 14:30] = True, True, True
    parts = [(0, _part(left, 3)), (1, _part(middle, 3)), (2, _part(right, 3))]
    pieces = _absorb_empty_parts(parts, np.array([1, 0, 2]), np.array([0.9, 0.8, 0.6]))
    assert [(count, chance) for _, count, chance in pieces] == [(1, 0.9), (2, 0.6)]
    assert (pieces[0][0] == (left | middle)).all() and (pieces[1][0] == right).all()
    assert _absorb_empty_parts(parts, np.array([0, 0, 0]), np.ones(3)) == []


class _FixedCounter:
    """A counter that gives every part the same answer, used on any number of parts."""

    def __init__(self, count: int, chance: float) -> None:
        self.config = dataclasses.replace(load_part_counter().config, min_parts=0)
        self.count, self.chance = count, chance

    def counts(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(features), self.count), np.full(len(features), self.chance)


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter.from_pretrained(BUNDLED_MODEL)


def test_objects_the_counter_gives_no_chromosome_are_set_aside_with_why(segmenter):
    result = analyse_metaphase(synthetic_metaphase(), segmenter, _FixedCounter(0, 0.9))
    assert result.count == 0
    dropped = [s for s in result.set_aside if s.kind == "not_counted"]
    assert len(dropped) == 7 and all("no chromosome of this metaphase (p = 0.90)" in s.reason for s in dropped)


@pytest.mark.parametrize("chance, flagged", [(0.5, True), (0.95, False)])
def test_a_count_the_counter_is_unsure_of_is_flagged_for_review(segmenter, chance, flagged):
    result = analyse_metaphase(synthetic_metaphase(), segmenter, _FixedCounter(1, chance))
    assert result.count == 7
    unsure = [c for c in result.chromosomes if "the part counter is unsure" in c.reason]
    assert len(unsure) == (7 if flagged else 0) and all(c.review for c in unsure)


def test_the_fitting_cli_names_a_folder_that_is_not_the_adir_set(tmp_path, capsys):
    from amfl import train_part_counter

    assert train_part_counter.main(["--adir", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "holds no SHA256SUMS: not the ADIR metaphase folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
