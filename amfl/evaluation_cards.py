"""Model cards rewritten from ``amfl.evaluate``'s measurements (``--card``), so a shipped
model's card lists every dataset it was scored on: the Pommier test split and the real ADIR
pairs (each kind from each input), with the command that measured them, and the saved
preprocessing and output steps the scores were measured through (a reader of the card on the
Hub sees which steps make those numbers, not the network alone)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import amfl.hub
from amfl.hub import CARD_FILE, CardEvaluation
from amfl.markdown import markdown_table
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
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


def preprocessing_section(preprocessor: Preprocessor) -> str:
    """A card section with every setting of ``preprocessor``, the way in and the way out, each
    value as ``preprocessor_config.json`` writes it."""
    rows = [[f"`{name}`", f"`{json.dumps(value)}`"] for name, value in preprocessor.to_dict().items()]
    return (
        "## Preprocessing and output steps\n\n"
        f"`amfl` applies these, saved in `{PREPROCESSOR_FILE}`, around the network "
        "(`amfl.segmentation.Segmenter.from_pretrained`), and the scores above were measured through "
        "them; what each one does is in the docstring of `amfl.preprocessing.Preprocessor`.\n\n"
        + markdown_table(["Setting", "Value"], rows) + "\n"
    )


def write_card(folder: Path, evaluations: Sequence[CardEvaluation]) -> Path:
    """Replace the README.md card of a model folder with one listing ``evaluations`` and the
    folder's preprocessing."""
    model = amfl.hub.from_pretrained(folder)
    card = model.generate_model_card(evaluations=evaluations)
    card.text = card.text.rstrip("\n") + "\n\n" + preprocessing_section(amfl.hub.load_preprocessor(folder, model))
    path = Path(folder) / CARD_FILE
    card.save(path)
    return path
