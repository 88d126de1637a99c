"""What a card rewritten from ``amfl.evaluate``'s measurements (``--card``) lists, so a shipped
model's card names every dataset it was scored on: the Pommier test split and the real ADIR
pairs (each kind from each input), with the command that measured them. The card itself, with
the preprocessing the scores were measured through, is ``amfl.hub.write_model_card``'s."""

from __future__ import annotations

from collections.abc import Sequence

from amfl.hub import CardEvaluation
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
