"""Pictures of a segmentation: label colours, overlays, difference images and PNG files.

One home for the paper's class colours (Fig. 4), shared by the data grid
(``python -m amfl.data show``), the app and the command line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: Display colours of the paper (Fig. 4), by label: black, red, green, blue.
CLASS_COLOURS = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
#: Colour names of ``CLASS_COLOURS``, for cards and legends.
CLASS_COLOUR_NAMES = ("black", "red", "green", "blue")
#: The class colours, then white for label 4 (spline overshoot, found in the raw data only).
_PALETTE = np.array([*CLASS_COLOURS, (255, 255, 255)], dtype=np.uint8)
#: Difference image: correctly segmented chromosome pixels (dark grey) and wrongly predicted
#: background (white, since the paper's background colour, black, would not show).
_DIFFERENCE_CORRECT = (64, 64, 64)
_DIFFERENCE_MISSED = (255, 255, 255)


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) labels 0-3 -> (H, W, 3) uint8 RGB in the paper's colours; label 4 (raw data
    only) shows as white."""
    return _PALETTE[np.clip(labels, 0, len(_PALETTE) - 1)]


def stretch_to_uint8(grey: np.ndarray) -> np.ndarray:
    """(H, W) any range -> uint8 0..255 from the image's min to its max (flat image: 0)."""
    low, high = float(grey.min()), float(grey.max())
    if high <= low:
        return np.zeros(grey.shape, np.uint8)
    return np.round((grey - low) * (255.0 / (high - low))).astype(np.uint8)


def overlay(display: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Tint the chromosome classes of a (H, W) uint8 image in the paper's colours.

    ``opacity`` 0 shows the image, 1 the plain colours; background pixels stay untouched.
    """
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must lie in 0..1, got {opacity}")
    rgb = np.repeat(display[..., None], 3, axis=-1).astype(np.float32)
    tinted = (1 - opacity) * rgb + opacity * colour_labels(labels).astype(np.float32)
    return np.where((labels > 0)[..., None], np.round(tinted), rgb).astype(np.uint8)


def difference_image(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The paper's Fig. 6 difference image, (H, W, 3) uint8.

    Pixels where the prediction differs from the truth take the colour of the predicted class
    (white where background was predicted, i.e. the chromosome was missed); correctly
    segmented chromosome pixels are dark grey and correct background black.
    """
    colours = _PALETTE[: len(CLASS_COLOURS)].copy()
    colours[0] = _DIFFERENCE_MISSED
    image = np.where((truth > 0)[..., None], np.uint8(_DIFFERENCE_CORRECT), np.uint8(0))
    wrong = pred != truth
    image[wrong] = colours[pred[wrong]]
    return image


def save_label_png(labels: np.ndarray, path: Path | str) -> Path:
    """Write the label map as a palette PNG: pixel values are the classes 0-3 (machine
    readable, and accepted back as a ground truth), shown in the paper's colours."""
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(_PALETTE[: len(CLASS_COLOURS)].ravel().tolist())
    image.save(path)
    return Path(path)


def save_png(pixels: np.ndarray, path: Path | str) -> Path:
    Image.fromarray(pixels).save(path)
    return Path(path)
