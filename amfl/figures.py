"""The paper's figures from our measurements: confusion matrices (Fig. 5), training curves,
and predictions beside the truth with difference images (Fig. 6); and the real pairs a
model fails worst on."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amfl.data.pairs import CLASS_NAMES  # noqa: E402
from amfl.data.real_pairs import PAIR_KINDS  # noqa: E402
from amfl.pictures import colour_labels, difference_image  # noqa: E402
from amfl.real_scoring import RealPredictions  # noqa: E402

#: Real pairs drawn per kind in the failure figure (the lowest Dice from the raw crop).
FAILURES_PER_KIND = 4


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
    for key in (key for key in records[0] if key.startswith("validation")):
        dice.plot(epochs, [record[key]["dice"] for record in records], marker=".", label=key.replace("_", " "))
    if "selection_dice" in records[0] and len([key for key in records[0] if key.startswith("validation")]) > 1:
        dice.plot(epochs, [record["selection_dice"] for record in records], marker=".", label="mean (selection)")
    dice.legend(fontsize=8)
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


def plot_real_failures(predictions: RealPredictions, path: Path, per_kind: int = FAILURES_PER_KIND) -> Path:
    """The ``per_kind`` pairs of each kind with the lowest Dice from the raw crop, one per
    row: the raw crop, the truth, the prediction from the raw and from the masked crop."""
    raw_dice, masked_dice = predictions.dice("raw"), predictions.dice("masked")
    chosen = []
    for kind in PAIR_KINDS:
        indices = [index for index, pair in enumerate(predictions.pairs) if pair.cluster.kind == kind]
        chosen += sorted(indices, key=lambda index: raw_dice[index])[:per_kind]
    if not chosen:
        raise ValueError("no real pairs to draw")
    figure, axes = plt.subplots(len(chosen), 4, figsize=(7.2, 1.9 * len(chosen)), squeeze=False)
    for row, index in enumerate(chosen):
        pair = predictions.pairs[index]
        panels = [
            (pair.raw, f"{pair.cluster.kind}, {pair.cluster.metaphase}", "gray"),
            (colour_labels(pair.labels), "truth", None),
            (colour_labels(predictions.labels["raw"][index]), f"from raw: Dice {raw_dice[index]:.1f}", None),
            (colour_labels(predictions.labels["masked"][index]), f"from masked: Dice {masked_dice[index]:.1f}", None),
        ]
        for axis, (picture, label, cmap) in zip(axes[row], panels, strict=True):
            axis.imshow(picture, cmap=cmap)
            axis.set_axis_off()
            axis.set_title(label, fontsize=6)
    figure.suptitle(f"{predictions.model}: lowest Dice per kind (strict naming)", fontsize=9)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
