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

from collections.abc import Callable, Sequence
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


def _rows(
    model: str, pairs: Sequence[RealPair], inputs: Sequence[str], predict: Callable[[RealPair, str], np.ndarray]
) -> list[RealPairScores]:
    rows = []
    for kind in PAIR_KINDS:
        chosen = [pair for pair in pairs if pair.cluster.kind == kind]
        if not chosen:
            continue
        for source in inputs:
            predicted = [predict(pair, source) for pair in chosen]
            rows.append(RealPairScores(model, kind, source, len(chosen), mean_scores(predicted, [p.labels for p in chosen])))
    return rows


def score_model(model: str, segmenter: Segmenter, pairs: Sequence[RealPair]) -> list[RealPairScores]:
    """``model`` on every kind of pair, from both inputs."""
    return _rows(model, pairs, REAL_INPUTS,
                 lambda pair, source: segmenter.segment_grey(getattr(pair, source).astype(np.float32)).labels)


def score_floor(pairs: Sequence[RealPair]) -> list[RealPairScores]:
    """The floor on every kind of pair (its prediction needs no input)."""
    return _rows(FLOOR_NAME, pairs, ("any",), lambda pair, source: floor_labels(pair.labels))
