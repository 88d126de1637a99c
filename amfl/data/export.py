"""Export the split dataset as a Hugging Face ``DatasetDict`` with its dataset card.

Images are stored unpadded (94 x 93) as 16-bit PNG so overlap sums above 255 survive; the
paper's padding to 128 x 128 and scaling to 0..1 belong to the model's preprocessing, not
to the data. The few negative grey values left by the spline rotation are stored as 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amfl.data.card import DatasetFacts, write_dataset_card
from amfl.data.pairs import OverlapPairs
from amfl.data.protocol import Splits, has_overlap

SPLIT_NAMES = {"train": "train", "validation": "validation", "test": "test"}


class HubPushError(RuntimeError):
    """Pushing to the Hub failed; the local export is kept and its path is in the message."""


def _features():
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.Image(),
            "sample_id": datasets.Value("int32"),
            "has_overlap": datasets.Value("bool"),
        }
    )


def _to_dataset(pairs: OverlapPairs, sample_ids: np.ndarray):
    import datasets

    grey = np.clip(pairs.images, 0, None).astype(np.uint16)
    return datasets.Dataset.from_dict(
        {
            "image": list(grey),
            "label": list(pairs.labels),
            "sample_id": sample_ids.astype(np.int32).tolist(),
            "has_overlap": has_overlap(pairs.labels).tolist(),
        },
        features=_features(),
    )


def to_dataset_dict(splits: Splits):
    """train / validation / test as a ``datasets.DatasetDict``; ``sample_id`` is the position
    in generation order, so any row can be traced back to its pair and placement."""
    import datasets

    return datasets.DatasetDict(
        {
            name: _to_dataset(getattr(splits, name), splits.indices[name])
            for name in SPLIT_NAMES
        }
    )


def export_dataset(splits: Splits, facts: DatasetFacts, out_dir: Path | str) -> Path:
    """Save the DatasetDict with ``save_to_disk`` and write README.md (the card) beside it."""
    out_dir = Path(out_dir)
    to_dataset_dict(splits).save_to_disk(str(out_dir))
    write_dataset_card(facts, out_dir / "README.md")
    return out_dir


def push_dataset(out_dir: Path | str, repo_id: str, private: bool = False) -> str:
    """Upload a saved export (data + card) to the Hub; raises HubPushError when offline."""
    import datasets
    from huggingface_hub import HfApi

    out_dir = Path(out_dir)
    try:
        dataset_dict = datasets.load_from_disk(str(out_dir))
        dataset_dict.push_to_hub(repo_id, private=private)
        HfApi().upload_file(
            path_or_fileobj=str(out_dir / "README.md"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
        )
    except Exception as error:  # offline, auth and HTTP errors all mean the same here
        raise HubPushError(
            f"could not push to the Hub dataset {repo_id} ({type(error).__name__}: {error}); "
            f"the local export is kept at {out_dir}"
        ) from error
    return f"https://huggingface.co/datasets/{repo_id}"
