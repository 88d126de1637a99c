"""What a finished run leaves behind: metrics.json, the model folder with its card, the
dataset card, and (on request) their upload to the Hub. Main process only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amfl.data.card import DatasetFacts, write_dataset_card
from amfl.data.export import HubPushError
from amfl.hub import CardEvaluation, save_model_folder
from amfl.metrics import BatchScores
from amfl.preprocessing import Preprocessor
from amfl.training.config import TrainConfig

METRICS_FILE = "metrics.json"
MODEL_DIR = "model"
#: ``--keep_epoch_models``: one model folder per epoch, ``epoch_NNNN``, under this folder.
EPOCH_MODELS_DIR = "epoch_models"
DATASET_CARD_DIR = "dataset_card"
#: Name the model card gives the data when it was not pushed to a Hub dataset repository.
LOCAL_DATASET_NAME = "pommier-lowres-13434-overlapping-pairs"


def model_dir(config: TrainConfig) -> Path:
    return config.output_dir / MODEL_DIR


def epoch_model_dir(config: TrainConfig, epoch: int) -> Path:
    return config.output_dir / EPOCH_MODELS_DIR / f"epoch_{epoch:04d}"


def dataset_name(config: TrainConfig) -> str:
    return config.hub_dataset_id or LOCAL_DATASET_NAME


def write_metrics(config: TrainConfig, scores: BatchScores, run: dict[str, Any]) -> Path:
    """metrics.json: the eight test scores, Table III's per-class IoU, the confusion matrix."""
    record = {
        "split": "test (samples with overlap pixels, as the paper scores)",
        "images": int(len(scores.accuracy)),
        "metrics": scores.summary(),
        "confusion_matrix": {
            "rows_true_columns_predicted": scores.confusion.tolist(),
            "percent_of_true_class": scores.confusion_percent.round(4).tolist(),
        },
        **run,
    }
    path = config.output_dir / METRICS_FILE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def save_model(
    generator: Any, config: TrainConfig, preprocessor: Preprocessor, scores: BatchScores | None, command: str,
    folder: Path | None = None,
) -> Path:
    """The generator as a ``from_pretrained`` folder (the run's ``model/`` unless ``folder``
    is given) with the preprocessing it was trained with; its card carries ``scores`` when
    given."""
    folder = model_dir(config) if folder is None else folder
    evaluations = [] if scores is None else [CardEvaluation(dataset_name(config), scores.summary(), command)]
    save_model_folder(generator, folder, preprocessor, evaluations)
    config.save(folder)
    return folder


def write_dataset_card_of_run(config: TrainConfig, facts: DatasetFacts) -> Path:
    folder = config.output_dir / DATASET_CARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return write_dataset_card(facts, folder / "README.md")


def push_results(config: TrainConfig, dataset_export: Path | None) -> list[str]:
    """Upload the model folder (with the dataset card inside) and, if exported, the dataset.

    Raises HubPushError with what failed; every local file stays where it is.
    """
    from huggingface_hub import HfApi

    from amfl.data.export import push_dataset

    urls = []
    if dataset_export is not None:
        urls.append(push_dataset(dataset_export, config.hub_dataset_id, private=config.hub_private))
    try:
        api = HfApi()
        api.create_repo(config.hub_model_id, private=config.hub_private, exist_ok=True)
        api.upload_folder(folder_path=str(model_dir(config)), repo_id=config.hub_model_id)
        card = config.output_dir / DATASET_CARD_DIR / "README.md"
        if card.is_file():
            api.upload_file(path_or_fileobj=str(card), path_in_repo="dataset_card.md", repo_id=config.hub_model_id)
    except Exception as error:  # offline, auth and HTTP errors all end the same way
        raise HubPushError(
            f"could not push to the Hub model {config.hub_model_id} ({type(error).__name__}: {error}); "
            f"the results are kept in {config.output_dir}"
        ) from error
    urls.append(f"https://huggingface.co/{config.hub_model_id}")
    return urls
