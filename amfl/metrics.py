"""The eight scores of Section II.C of the AMFL paper, computed the way the authors score.

Per test image and per class c in {0 background, 1 first chromosome only, 2 second
chromosome only, 3 overlap}, from the predicted and the true label map: Dice, IoU,
Precision, Recall, FNR, FPR (percent) and the symmetric Hausdorff distance (Euclidean,
pixels). Each is averaged over the four classes, then over images. Acc is the image's pixel
accuracy over all classes (eq. 8), averaged over images.

The paper is silent on empty classes; the conventions here (documented for the tables):

- A ratio whose denominator counts no pixel had nothing to get wrong and scores perfect:
  Dice, IoU, Precision, Recall 100 and FNR, FPR 0. So a class absent from both maps is
  perfect agreement. A class present in only one map still loses where the counts are
  defined: only in the truth (missed) gives Dice = IoU = Recall = 0, FNR = 100, Precision 100;
  only in the prediction (invented) gives Dice = IoU = Precision = 0, FPR > 0, Recall 100.
- Hausdorff: 0 when the class is absent from both maps; the image diagonal between corner
  pixel centres, hypot(H - 1, W - 1) (the largest distance possible in the image, 179.6 px at
  128 x 128), when it is present in only one.

Hausdorff uses Euclidean distance transforms on the crop around the chromosomes (the
bounding box of all non-background pixels of both maps, one pixel wider), which is exact
(see ``_chromosome_crops``) and fast enough to score the 2,432 test images in seconds.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import distance_transform_edt

NUM_CLASSES = 4
#: The eight scores, in the column order of the paper's Tables I, II and V.
METRIC_NAMES = ("acc", "dice", "iou", "recall", "precision", "fnr", "fpr", "hausdorff")
#: The seven scores computed per class before the class average.
CLASS_METRIC_NAMES = METRIC_NAMES[1:]
#: Unit of every score this module reports, including Table III's per-class IoU.
METRIC_UNITS = {
    **{name: "%" for name in METRIC_NAMES if name != "hausdorff"},
    "hausdorff": "px",
    **{f"iou_class_{label}": "%" for label in range(1, NUM_CLASSES)},
}
#: Images per bincount call: bounds the temporary index array to ~ 64 MiB at 128 x 128.
_IMAGES_PER_CHUNK = 512


@dataclass(frozen=True)
class BatchScores:
    """Scores of N image pairs.

    Attributes:
        accuracy: (N,) pixel accuracy of each image, percent.
        per_class: name -> (N, 4) array for the seven class-wise scores (percent; Hausdorff
            in pixels), column c = class c.
        confusion: (4, 4) pixel counts summed over the images; rows = true class,
            columns = predicted class (Fig. 5 layout).
    """

    accuracy: np.ndarray
    per_class: Mapping[str, np.ndarray]
    confusion: np.ndarray

    @property
    def per_image(self) -> dict[str, np.ndarray]:
        """The eight scores of each image, (N,) each: class-wise scores averaged over classes."""
        return {
            "acc": self.accuracy,
            **{name: self.per_class[name].mean(axis=1) for name in CLASS_METRIC_NAMES},
        }

    @property
    def means(self) -> dict[str, float]:
        """The eight scores of Tables I, II and V: per-image scores averaged over images."""
        return {name: float(values.mean()) for name, values in self.per_image.items()}

    @property
    def class_iou(self) -> np.ndarray:
        """(4,) IoU of each class averaged over images, percent; Table III reports [1:]."""
        return self.per_class["iou"].mean(axis=0)

    @property
    def confusion_percent(self) -> np.ndarray:
        """Confusion rows normalised to percent of each true class's pixels (Fig. 5).

        A class absent from every true map has a row of zeros.
        """
        totals = self.confusion.sum(axis=1, keepdims=True)
        return 100 * self.confusion / np.maximum(totals, 1)

    def summary(self) -> dict[str, float]:
        """The eight means plus Table III's per-class IoU, keyed as in ``METRIC_UNITS``."""
        class_iou = {f"iou_class_{c}": float(self.class_iou[c]) for c in range(1, NUM_CLASSES)}
        return {**self.means, **class_iou}


def score_batch(pred_labels: ArrayLike, true_labels: ArrayLike) -> BatchScores:
    """Score predicted against true label maps, both (N, H, W) or (H, W), values 0..3."""
    pred, true = _as_label_map_pair(pred_labels, true_labels)
    confusion = _per_image_confusion(pred, true)
    true_positives = np.diagonal(confusion, axis1=1, axis2=2)
    false_positives = confusion.sum(axis=1) - true_positives
    false_negatives = confusion.sum(axis=2) - true_positives
    pixels = confusion.sum(axis=(1, 2))
    true_negatives = pixels[:, None] - true_positives - false_positives - false_negatives
    per_class = {
        "dice": _percent(2 * true_positives, 2 * true_positives + false_positives + false_negatives, 1),
        "iou": _percent(true_positives, true_positives + false_positives + false_negatives, 1),
        "recall": _percent(true_positives, true_positives + false_negatives, 1),
        "precision": _percent(true_positives, true_positives + false_positives, 1),
        "fnr": _percent(false_negatives, true_positives + false_negatives, 0),
        "fpr": _percent(false_positives, false_positives + true_negatives, 0),
        "hausdorff": _hausdorff_per_class(pred, true, confusion),
    }
    accuracy = _percent(true_positives.sum(axis=1), pixels, 1)
    return BatchScores(accuracy=accuracy, per_class=per_class, confusion=confusion.sum(axis=0))


def confusion_matrix(pred_labels: ArrayLike, true_labels: ArrayLike) -> np.ndarray:
    """(4, 4) pixel counts over all given maps; rows = true class, columns = predicted class."""
    return _per_image_confusion(*_as_label_map_pair(pred_labels, true_labels)).sum(axis=0)


def hausdorff_distance(mask_a: ArrayLike, mask_b: ArrayLike) -> float:
    """Symmetric Hausdorff distance between two boolean masks, Euclidean, in pixels.

    Empty masks follow the module's convention: 0 if both are empty, the image diagonal
    hypot(H - 1, W - 1) if only one is.
    """
    a, b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two 2-D masks of the same shape; got {a.shape} and {b.shape}")
    distance = float(_distance_when_empty(a.any(), b.any(), a.shape))
    return _symmetric_hausdorff(a, b) if math.isnan(distance) else distance


def _as_label_map_pair(pred_labels: ArrayLike, true_labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pred = _as_label_maps(pred_labels, "pred_labels")
    true = _as_label_maps(true_labels, "true_labels")
    if pred.shape != true.shape:
        raise ValueError(
            f"pred_labels and true_labels must have the same shape; got {pred.shape} and "
            f"{true.shape}"
        )
    return pred, true


def _per_image_confusion(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N, 4, 4) pixel counts per image, rows = true class, columns = predicted class.

    One bincount over a code per pixel (image, true, predicted) counts all images at once.
    """
    cells = NUM_CLASSES * NUM_CLASSES
    counts = np.empty((len(true), NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for start in range(0, len(true), _IMAGES_PER_CHUNK):
        chunk = slice(start, start + _IMAGES_PER_CHUNK)
        images = len(true[chunk])
        image_codes = (np.arange(images, dtype=np.intp) * cells)[:, None, None]
        codes = image_codes + true[chunk].astype(np.intp) * NUM_CLASSES + pred[chunk]
        counts[chunk] = np.bincount(codes.ravel(), minlength=images * cells).reshape(
            images, NUM_CLASSES, NUM_CLASSES
        )
    return counts


def _as_label_maps(labels: ArrayLike, name: str) -> np.ndarray:
    maps = np.asarray(labels)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"{name} must be label maps shaped (N, H, W) or (H, W); got {maps.shape}")
    if not np.issubdtype(maps.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer class labels 0..{NUM_CLASSES - 1}; got dtype "
            f"{maps.dtype} (take the argmax over the class axis of probabilities first)"
        )
    if maps.size and (maps.min() < 0 or maps.max() >= NUM_CLASSES):
        found = np.unique(maps[(maps < 0) | (maps >= NUM_CLASSES)])
        raise ValueError(
            f"{name} holds labels {found.tolist()} outside the classes 0..{NUM_CLASSES - 1}"
        )
    return maps


def _percent(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """100 * numerator / denominator, and 100 * ``empty`` where the denominator counts nothing."""
    ratio = numerator / np.maximum(denominator, 1)
    return 100 * np.where(denominator > 0, ratio, empty)


def _distance_when_empty(present_a: ArrayLike, present_b: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """Hausdorff for the empty-mask cases (0 or the image diagonal); NaN where both are present."""
    present_a, present_b = np.asarray(present_a), np.asarray(present_b)
    diagonal = math.hypot(shape[-2] - 1, shape[-1] - 1)
    return np.where(present_a & present_b, np.nan, np.where(present_a | present_b, diagonal, 0.0))


def _symmetric_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Hausdorff distance of two non-empty masks."""
    return max(_directed_hausdorff(a, b), _directed_hausdorff(b, a))


def _directed_hausdorff(source: np.ndarray, target: np.ndarray) -> float:
    """Largest distance from a pixel of ``source`` to its nearest pixel of ``target``.

    Pixels of both masks are at distance 0, so only ``source`` minus ``target`` can be far;
    when that is empty no distance transform is needed.
    """
    outside_target = source & ~target
    if not outside_target.any():
        return 0.0
    return float(distance_transform_edt(~target)[outside_target].max())


def _hausdorff_per_class(pred: np.ndarray, true: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """(N, 4) Hausdorff distances in pixels; ``confusion`` is the per-image confusion."""
    distances = _distance_when_empty(
        confusion.sum(axis=2) > 0, confusion.sum(axis=1) > 0, true.shape
    )
    true_positives = np.diagonal(confusion, axis1=1, axis2=2)
    identical = (confusion.sum(axis=1) == true_positives) & (confusion.sum(axis=2) == true_positives)
    distances[identical & np.isnan(distances)] = 0.0
    for image, crop in _chromosome_crops(pred, true):
        for label in np.flatnonzero(np.isnan(distances[image])):
            distances[image, label] = _symmetric_hausdorff(
                true[image][crop] == label, pred[image][crop] == label
            )
    return distances


def _chromosome_crops(pred: np.ndarray, true: np.ndarray) -> list[tuple[int, tuple[slice, slice]]]:
    """Per image with chromosomes: the bounding box of non-background pixels in either map,
    grown by one pixel where the image allows.

    Distances computed inside this crop are exact for every class. Classes 1-3 lie wholly
    inside it. For the background, any background pixel outside the crop can be replaced by
    its projection onto the crop's one-pixel rim, which is background in both maps and no
    farther from any pixel inside the crop; where the crop touches the image border there
    is nothing outside.
    """
    chromosome = (pred != 0) | (true != 0)
    rows, columns = chromosome.any(axis=2), chromosome.any(axis=1)
    height, width = true.shape[1:]
    crops = []
    for image in np.flatnonzero(rows.any(axis=1)):
        row_hits, column_hits = np.flatnonzero(rows[image]), np.flatnonzero(columns[image])
        crops.append((
            int(image),
            (
                slice(max(row_hits[0] - 1, 0), min(row_hits[-1] + 2, height)),
                slice(max(column_hits[0] - 1, 0), min(column_hits[-1] + 2, width)),
            ),
        ))
    return crops
