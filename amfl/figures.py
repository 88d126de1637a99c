"""The paper's figures from our measurements: confusion matrices (Fig. 5), training curves,
and predictions beside the truth with difference images (Fig. 6)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amfl.data.pairs import CLASS_NAMES  # noqa: E402
from amfl.pictures import colour_labels, difference_image  # noqa: E402


def plot_confusion(percent: np.ndarray, title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (rows true, columns predicted) with the numbers."""
    figure, axes = plt.subplots(figsize=(5.2, 4.6))
    axes.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    for row in range(percent.shape[0]):
        for column in range(percent.shape[1]):
            colour = "white" if percent[row, column] > 60 else "black"
            axes.text(column, row, f"{percent[row, column]:.2f}", ha="center", va="center", color=colour, fontsize=9)
    names = [name.replace(" ", "\n") for name in CLASS_NAMES]
    axes.set_xticks(range(len(names)), names, fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    return _save(figure, path)


def plot_training_curves(log_path: Path, title: str, path: Path) -> Path:
    """Losses and validation Dice per epoch from a trainer's log.jsonl."""
    records = [json.loads(line) for line in Path(log_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise ValueError(f"{log_path} holds no epochs")
    epochs = [record["epoch"] for record in records]
    figure, (losses, dice) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in records[0]["loss"]:
        losses.plot(epochs, [record["loss"][name] for record in records], label=name)
    losses.set_yscale("log")
    losses.set_xlabel("epoch")
    losses.set_ylabel("mean training loss")
    losses.legend(fontsize=8)
    dice.plot(epochs, [record["validation"]["dice"] for record in records], marker=".")
    dice.set_xlabel("epoch")
    dice.set_ylabel("validation Dice (%)")
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def plot_predictions(
    images: np.ndarray, true: np.ndarray, predictions: dict[str, np.ndarray], path: Path
) -> Path:
    """Fig. 6: per sample a row: image, truth, then each model's prediction and difference."""
    columns = 2 + 2 * len(predictions)
    figure, axes = plt.subplots(len(images), columns, figsize=(1.6 * columns, 1.6 * len(images)), squeeze=False)
    for row, (image, truth) in enumerate(zip(images, true, strict=True)):
        panels = [(image, "image", "gray"), (colour_labels(truth), "truth", None)]
        for name, predicted in predictions.items():
            panels += [(colour_labels(predicted[row]), name, None), (difference_image(predicted[row], truth), f"{name} errors", None)]
        for axis, (picture, label, cmap) in zip(axes[row], panels, strict=True):
            axis.imshow(picture, cmap=cmap)
            axis.set_axis_off()
            if row == 0:
                axis.set_title(label, fontsize=7)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
