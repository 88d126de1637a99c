"""Model cards rewritten from ``amfl.evaluate``'s measurements (``--card``), so a shipped
model's card lists every dataset it was scored on: the Pommier test split and the real ADIR
pairs (each kind from each input), with the command that measured them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import amfl.hub
from amfl.hub import CARD_FILE, CardEvaluation
from amfl.real_scoring import RealPairScores
from amfl.training.publish import LOCAL_DATASET_NAME

#: Dataset name of the real pairs on a card (``amfl.data.real_pairs``).
REAL_PAIRS_DATASET = "adir-mfish-real-pairs"


def card_evaluations(
    test_scores: dict[str, float], real_rows: Sequence[RealPairScores], command: str, real_split: str,
    dataset: str = LOCAL_DATASET_NAME,
) -> list[CardEvaluation]:
    """The Pommier test scores, then one entry per kind and input of the real pairs."""
    evaluations = [CardEvaluation(dataset, test_scores, command)]
    evaluations += [
        CardEvaluation(REAL_PAIRS_DATASET, row.means, command, split=real_split, subset=f"{row.kind}-{row.input}")
        for row in real_rows
    ]
    return evaluations


def write_card(folder: Path, evaluations: Sequence[CardEvaluation]) -> Path:
    """Replace the README.md card of a model folder with one listing ``evaluations``."""
    model = amfl.hub.from_pretrained(folder)
    path = Path(folder) / CARD_FILE
    model.generate_model_card(evaluations=evaluations).save(path)
    return path
