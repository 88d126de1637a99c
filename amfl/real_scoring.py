"""Scoring a model on the real pairs of the ADIR metaphases (``amfl.data.real_pairs``), the
benchmark that matters beside the Pommier test split.

Each pair is segmented at its own size through the model's own preprocessing
(:class:`amfl.segmentation.Segmenter`), from both inputs: ``raw`` (the microscope's crop)
and ``masked`` (outside the pair set to 0). Naming is strict: label 1 must be the smaller
chromosome, as in the truth; a prediction that swaps the two chromosomes scores as wrong.
Scores are the paper's eight, per image then averaged over the images of each kind, beside a
trivial floor: the perfect chromosome mask with every pixel called the larger chromosome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amfl.data.real_pairs import PAIR_KINDS, RealPair
from amfl.metrics import METRIC_NAMES, score_batch
from amfl.segmentation import Segmenter

#: The two inputs of every real pair.
REAL_INPUTS = ("raw", "masked")
#: Row name of the trivial floor.
FLOOR_NAME = "floor: perfect mask, all 'larger chromosome'"


@dataclass(frozen=True)
class RealPairScores:
    """The eight mean scores of one model on one kind of pair from one input."""

    model: str
    kind: str
    input: str
    images: int
    means: dict[str, float]

    def row(self) -> dict[str, object]:
        return {"model": self.model, "kind": self.kind, "input": self.input, "images": self.images, **self.means}


def mean_scores(predicted: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict[str, float]:
    """Per image (each at its own size), the paper's scores; then their mean over images."""
    per_image = [score_batch(pred[None], truth[None]).means for pred, truth in zip(predicted, truths, strict=True)]
    return {name: float(np.mean([scores[name] for scores in per_image])) for name in METRIC_NAMES}


def floor_labels(truth: np.ndarray) -> np.ndarray:
    """The trivial floor's prediction: every chromosome pixel (truth > 0) is label 2."""
    return np.where(truth > 0, 2, 0).astype(np.uint8)


@dataclass(frozen=True)
class RealPredictions:
    """A model's label maps for each pair, per input (``labels[input][i]`` is for ``pairs[i]``)."""

    model: str
    pairs: Sequence[RealPair]
    labels: dict[str, list[np.ndarray]]

    def dice(self, source: str) -> np.ndarray:
        """(N,) Dice of each pair from ``source``, percent."""
        return np.array([
            score_batch(predicted[None], pair.labels[None]).means["dice"]
            for predicted, pair in zip(self.labels[source], self.pairs, strict=True)
        ])


def predict_real_pairs(model: str, segmenter: Segmenter, pairs: Sequence[RealPair]) -> RealPredictions:
    """``segmenter``'s labels for every pair, from both inputs."""
    return RealPredictions(model, pairs, {
        source: [segmenter.segment_grey(getattr(pair, source).astype(np.float32)).labels for pair in pairs]
        for source in REAL_INPUTS
    })


def score_predictions(predictions: RealPredictions) -> list[RealPairScores]:
    """The mean scores of ``predictions`` per kind of pair and input."""
    rows = []
    for kind in PAIR_KINDS:
        chosen = [index for index, pair in enumerate(predictions.pairs) if pair.cluster.kind == kind]
        if not chosen:
            continue
        truths = [predictions.pairs[index].labels for index in chosen]
        for source, labels in predictions.labels.items():
            means = mean_scores([labels[index] for index in chosen], truths)
            rows.append(RealPairScores(predictions.model, kind, source, len(chosen), means))
    return rows


def score_model(model: str, segmenter: Segmenter, pairs: Sequence[RealPair]) -> list[RealPairScores]:
    """``model`` on every kind of pair, from both inputs."""
    return score_predictions(predict_real_pairs(model, segmenter, pairs))


def floor_predictions(pairs: Sequence[RealPair]) -> RealPredictions:
    """The floor's labels for every pair (its prediction needs no input: ``"any"``)."""
    return RealPredictions(FLOOR_NAME, pairs, {"any": [floor_labels(pair.labels) for pair in pairs]})


def score_floor(pairs: Sequence[RealPair]) -> list[RealPairScores]:
    """The floor on every kind of pair."""
    return score_predictions(floor_predictions(pairs))
