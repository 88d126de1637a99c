"""The real-pair benchmark's validation Dice of the generator after each epoch
(``--benchmark_validation``).

Why: the run's own real validation scores 128 x 128 windows of the metaphases, network only,
while a default is chosen on the benchmark's crops (:mod:`amfl.real_scoring`), each through the
saved preprocessing and output steps, and the two can part: over four epochs of
``runs/masked-default-3`` (stop 43) the windows rose from 68.07 to 70.17 Dice while every mean
of those epochs lost the benchmark's raw touching crops (``results/real-image/README.md``, rule
12). With this, ``log.jsonl`` holds each epoch's benchmark scores, the ones ``amfl.evaluate``
gives the saved epoch model, without a sweep, and ``--select_on benchmark`` keeps the epoch with
the best mean of the four. Only the validation split is read, never test.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from amfl.data.adir import list_metaphases
from amfl.data.real_pairs import RealPair, extract_real_pairs
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import score_model
from amfl.segmentation import Segmenter

#: The benchmark split scored while training.
SPLIT = "validation"


class BenchmarkValidation:
    """The benchmark's validation pairs, extracted once per run; :meth:`dice` scores a generator."""

    def __init__(self, pairs: Sequence[RealPair]) -> None:
        if not pairs:
            raise ValueError("the real-pair benchmark has no validation pairs to score")
        self.pairs = list(pairs)

    @classmethod
    def from_adir(cls, folder: Path | None = None) -> BenchmarkValidation:
        """The validation pairs of the ADIR metaphases in ``folder`` (default: as
        :func:`amfl.data.adir.list_metaphases`)."""
        return cls(extract_real_pairs(list_metaphases(folder), progress=False).select(split=SPLIT))

    def dice(self, generator: nn.Module, preprocessor: Preprocessor) -> dict[str, float]:
        """Mean Dice (strict naming) per kind of pair and input, keyed ``"<kind>_<input>"``
        (e.g. ``"touching_raw"``), of ``generator`` through ``preprocessor``'s steps: a float32
        CPU copy runs, so the generator itself (its device, mode and layers) is left as it was."""
        model = copy.deepcopy(generator).float().cpu().eval()
        segmenter = Segmenter(model, "training", preprocessor)
        return {f"{row.kind}_{row.input}": row.means["dice"] for row in score_model("epoch", segmenter, self.pairs)}
