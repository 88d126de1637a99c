"""The learned part counter: how many chromosomes each part of a metaphase holds.

Gradient-boosted decision trees (scikit-learn's ``GradientBoostingClassifier``, fitted by
:mod:`amfl.train_part_counter` on the expert labels of the ADIR training cases) over the
features of :mod:`amfl.metaphase_features`. The trees are stored as plain arrays in
``model.safetensors`` with a ``config.json`` beside them, and evaluated here with numpy: the
app and the CLI need neither scikit-learn nor pickle. The bundled counter lives in
``amfl/weights/part_counter/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from amfl.metaphase_features import FEATURES

BUNDLED_PART_COUNTER = Path(__file__).parent / "weights" / "part_counter"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
#: Tree arrays, each (trees, classes, nodes); a leaf has ``left == -1``.
TREE_ARRAYS = ("left", "right", "feature", "threshold", "value")


@dataclass(frozen=True)
class PartCounterConfig:
    """What the counter was fitted on and how (saved as ``config.json``)."""

    features: tuple[str, ...]
    #: Chromosomes per part of each class; the last one means "this many or more".
    classes: tuple[int, ...]
    learning_rate: float
    n_estimators: int
    max_depth: int
    subsample: float
    random_state: int
    #: The command that fitted it, and the parts per class it was fitted on.
    command: str = ""
    parts_per_class: dict[str, int] = field(default_factory=dict)
    metaphases: int = 0
    #: The fewest parts of a training metaphase's spread: below it (a partial spread, a crop)
    #: the features leave what the counter has seen, and the hand rule counts instead.
    min_parts: int = 0


class PartCounter:
    """Boosted trees of one multi-class model: raw score of class k = ``init[k]`` +
    ``learning_rate`` x the sum of tree k's leaf values; softmax gives probabilities."""

    def __init__(self, config: PartCounterConfig, init: np.ndarray, trees: dict[str, np.ndarray]) -> None:
        if tuple(config.features) != FEATURES:
            raise ValueError(
                f"this part counter was fitted on features {list(config.features)}, but this version of amfl "
                f"computes {list(FEATURES)}; refit it with python -m amfl.train_part_counter"
            )
        self.config, self.init, self.trees = config, init, trees

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) raw scores for (n, features) rows."""
        left, right, feature, threshold, value = (self.trees[name] for name in TREE_ARRAYS)
        trees, classes, _ = left.shape
        # Trees compare float32 features (as scikit-learn does) against float64 thresholds.
        rows = np.asarray(features, np.float32).astype(np.float64)
        samples = len(rows)
        tree_index = np.arange(trees * classes)
        left, right, feature = left.reshape(trees * classes, -1), right.reshape(trees * classes, -1), feature.reshape(trees * classes, -1)
        threshold, value = threshold.reshape(trees * classes, -1), value.reshape(trees * classes, -1)
        node = np.zeros((samples, trees * classes), np.int64)
        for _ in range(left.shape[1]):
            children = left[tree_index, node]
            inner = children >= 0
            if not inner.any():
                break
            goes_left = rows[np.arange(samples)[:, None], feature[tree_index, node]] <= threshold[tree_index, node]
            node = np.where(inner, np.where(goes_left, children, right[tree_index, node]), node)
        leaves = value[tree_index, node].reshape(samples, trees, classes)
        return self.init + self.config.learning_rate * leaves.sum(axis=1)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities."""
        scores = self.raw_scores(features)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def counts(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chromosomes per part, probability of that answer), the most probable class."""
        probabilities = self.probabilities(features)
        best = probabilities.argmax(axis=1)
        return np.asarray(self.config.classes)[best], probabilities[np.arange(len(best)), best]

    def save(self, folder: Path | str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"init": self.init, **self.trees}, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | str) -> PartCounter:
        folder = Path(folder)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"no part counter in {folder}: {name} is missing (python -m amfl.train_part_counter makes one)")
        raw = json.loads((folder / CONFIG_FILE).read_text())
        config = PartCounterConfig(**{**raw, "features": tuple(raw["features"]), "classes": tuple(raw["classes"])})
        arrays = load_file(str(folder / WEIGHTS_FILE))
        return cls(config, arrays["init"], {name: arrays[name] for name in TREE_ARRAYS})

    @classmethod
    def from_gradient_boosting(cls, model, config: PartCounterConfig, sample: np.ndarray) -> PartCounter:
        """Copy a fitted ``GradientBoostingClassifier``'s trees into arrays. Its initial raw
        score is read back from ``decision_function`` on ``sample`` (public API only)."""
        estimators = model.estimators_
        nodes = max(tree.tree_.node_count for tree in estimators.ravel())
        shape = estimators.shape + (nodes,)
        trees = {
            "left": np.full(shape, -1, np.int32), "right": np.full(shape, -1, np.int32),
            "feature": np.zeros(shape, np.int32), "threshold": np.zeros(shape), "value": np.zeros(shape),
        }
        for (t, k), estimator in np.ndenumerate(estimators):
            tree, count = estimator.tree_, estimator.tree_.node_count
            trees["left"][t, k, :count], trees["right"][t, k, :count] = tree.children_left, tree.children_right
            trees["feature"][t, k, :count] = np.maximum(tree.feature, 0)
            trees["threshold"][t, k, :count], trees["value"][t, k, :count] = tree.threshold, tree.value[:, 0, 0]
        counter = cls(config, np.zeros(estimators.shape[1]), trees)
        init = model.decision_function(sample[:1])[0] - (counter.raw_scores(sample[:1])[0])
        return cls(config, init, trees)


@lru_cache(maxsize=4)
def load_part_counter(folder: Path | str = BUNDLED_PART_COUNTER) -> PartCounter:
    """The part counter in ``folder`` (default: the bundled one), loaded once per process."""
    return PartCounter.load(folder)
