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
    figure, (losses, dice) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, (epochs, values) in loss_curves(records).items():
        losses.plot(epochs, values, label=label)
    losses.set_yscale("log")
    losses.set_xlabel("epoch")
    losses.set_ylabel("mean training loss")
    for label, (epochs, values) in dice_curves(records).items():
        dice.plot(epochs, values, marker=".", label=label)
    dice.set_xlabel("epoch")
    dice.set_ylabel("validation Dice (%)")
    for axes in (losses, dice):
        if axes.lines:
            axes.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


#: Curves of a log by label: the epochs that logged them and their values.
Curves = dict[str, tuple[list[int], list[float]]]


def _add(curves: Curves, label: str, epoch: int, value: float) -> None:
    epochs, values = curves.setdefault(label, ([], []))
    epochs.append(epoch)
    values.append(value)


def loss_curves(records: list[dict]) -> Curves:
    """Each training loss of a log; a fine-tune's epoch 0 (its starting model) trained none."""
    curves: Curves = {}
    for record in records:
        for name, value in record["loss"].items():
            _add(curves, name, record["epoch"], value)
    return curves


def dice_curves(records: list[dict]) -> Curves:
    """Each validation Dice curve of a log, in percent.

    A ``validation*`` entry holds either one validation set's mean metrics (its ``dice``
    plotted) or, for the real-pair benchmark (``--benchmark_validation``), a Dice per kind of
    pair and input (each plotted); an entry missing from some epochs (the benchmark when a run
    was resumed with the flag) is plotted where it is logged. The selection Dice follows unless
    it is the main validation Dice throughout (one validation set, selected on)."""
    curves: Curves = {}
    for record in records:
        for key, value in record.items():
            if not key.startswith("validation"):
                continue
            label = key.replace("_", " ")
            if "dice" in value:
                _add(curves, label, record["epoch"], value["dice"])
            else:
                for name, part_dice in value.items():
                    _add(curves, f"{label} {name.replace('_', ' ')}", record["epoch"], part_dice)
    if any(record.get("selection_dice") != record.get("validation", {}).get("dice") for record in records):
        for record in (record for record in records if "selection_dice" in record):
            _add(curves, "selection", record["epoch"], record["selection_dice"])
    return curves


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
