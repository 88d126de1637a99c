"""The one preprocessing path shared by training, evaluation, the CLI and the app.

A model sees a float32 image scaled to 0..1 and padded to a size its encoder can halve four
times (a multiple of 16); the dataset protocol of the paper pads 94 x 93 samples to 128 x 128.
Padding is centred (extra row/column at the bottom/right), which matches how the AMFL authors
padded their test masks: 17 rows above and below, 17 columns left and 18 right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The encoder halves the size four times, so inputs must be a multiple of this.
SIZE_MULTIPLE = 16
#: Image pad value used by the paper (Section III.A.1); our default is the image's own
#: background (0 for the Pommier data), which does not invent a bright frame.
PAPER_IMAGE_PAD_VALUE = 255


@dataclass(frozen=True)
class Padding:
    """Rows/columns added on each side, so a prediction can be cropped back."""

    top: int
    bottom: int
    left: int
    right: int

    def crop(self, array: np.ndarray) -> np.ndarray:
        """Undo the padding on the last two axes."""
        height, width = array.shape[-2:]
        return array[..., self.top : height - self.bottom, self.left : width - self.right]


def centred_padding(shape: tuple[int, int], target: tuple[int, int]) -> Padding:
    """Padding that centres an image of ``shape`` on ``target`` (odd extra goes bottom/right)."""
    (height, width), (target_height, target_width) = shape, target
    if height > target_height or width > target_width:
        raise ValueError(
            f"cannot pad an image of {height} x {width} pixels to the smaller "
            f"{target_height} x {target_width}"
        )
    top, left = (target_height - height) // 2, (target_width - width) // 2
    return Padding(top, target_height - height - top, left, target_width - width - left)


def padded_size(size: int, multiple: int = SIZE_MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` that holds ``size`` pixels."""
    return -(-size // multiple) * multiple


def network_size(shape: tuple[int, int], multiple: int = SIZE_MULTIPLE, minimum: int = 0) -> tuple[int, int]:
    """Padded (height, width) for a model: multiples of ``multiple``, at least ``minimum``.

    Inference uses ``minimum`` = the training size (128), so a small crop such as a 94 x 93
    Pommier sample gets the same amount of surrounding background as in training.
    """
    return tuple(max(padded_size(side, multiple), padded_size(minimum, multiple)) for side in shape)


def pad(array: np.ndarray, padding: Padding, value: float) -> np.ndarray:
    """Pad the last two axes of ``array`` (any leading batch axes are kept)."""
    widths = [(0, 0)] * (array.ndim - 2) + [
        (padding.top, padding.bottom),
        (padding.left, padding.right),
    ]
    return np.pad(array, widths, mode="constant", constant_values=value)


def scale_to_unit(images: np.ndarray) -> np.ndarray:
    """Scale each image (last two axes) to 0..1 by its own maximum, as float32.

    Per-image scaling makes 8-bit, 12-bit and 16-bit inputs comparable and keeps the
    brighter overlap pixels (grey sums that exceed 255 in the Pommier data) below 1.
    Values below 0 (spline undershoot at edges) are clipped to the background, 0.
    An all-zero image stays zero.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0, None)
    peaks = images.max(axis=(-2, -1), keepdims=True)
    return np.divide(images, peaks, out=np.zeros_like(images), where=peaks > 0)


def prepare_images(
    images: np.ndarray, target: tuple[int, int] | None = None, pad_value: float = 0
) -> tuple[np.ndarray, Padding]:
    """Images (..., H, W) -> float32 (..., H', W') in 0..1, padded centred to ``target``
    (default: the next multiple of 16 on each side). Returns the padding for cropping back."""
    target = target or network_size(images.shape[-2:])
    padding = centred_padding(images.shape[-2:], target)
    return scale_to_unit(pad(images, padding, pad_value)), padding
