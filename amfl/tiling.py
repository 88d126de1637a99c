"""The network on a large image in overlapping tiles, so its memory does not grow with the image.

A convolutional network's activations grow with its input: the bundled amfl-small peaks at
about 9.5 GB on one 4096 x 4096 forward. :func:`tiled_labels` runs it on windows of at most
``core + 2 * margin`` pixels a side instead, and keeps of each window only its core: every
kept pixel saw ``margin`` pixels of real image around it (or the image's own border, where
the whole-image forward sees the same zero padding), so the labels match the whole-image
labels except where the network's context reaches further than the margin. The
normalisation stays per whole image: only an image already prepared by
:meth:`amfl.preprocessing.Preprocessor.prepare` is cut into tiles.

One more thing ties a U-Net's output to its input size: bilinear upsampling with
``align_corners=True`` (the NestedUNet's) samples at ``i * (n - 1) / (2n - 1)``, a grid that
depends on the size ``n`` of what it upsamples, so a tile would sample its features up to
half a pixel of each level away from where the whole image samples them: 3453 of the
630,000 pixels of a 700 x 900 mosaic of the examples changed class, as many as 7 % of its
chromosome pixels. :func:`whole_image_grid` makes such layers sample a tile on the whole
image's grid instead; with it, 8-97 pixels differ with the defaults of stops 35-41 (those of
stops 35-39 all within 27 pixels of a tile seam, where the network's context reaches past the
64-pixel margin; none with 96 for the defaults of stops 39 and 41, none with 128 for the
earlier ones). A network with
image-wide context (the BiSeNets' global pooling) sees only its tile's when tiled.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: The tile being run, in full-resolution pixels: (top, left, height, width) of its window,
#: then (height, width) of the whole prepared image; None outside :func:`tiled_labels`.
_WINDOW: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar(
    "amfl_tiling_window", default=None
)


@dataclass(frozen=True)
class Tiling:
    """When and how the network runs in tiles.

    Attributes:
        above_pixels: a prepared (padded) image of more pixels than this is tiled; smaller
            ones get one forward, exactly as before tiling existed.
        core: side of the part of each tile that is kept, pixels (at most; cores are spread
            evenly over the image, each a multiple of the model's input divisor).
        margin: context added on each side of a core, pixels: 64 covers the effective
            receptive field of the U-shaped networks at the paper's resolution (the
            agreement this gives is measured in tests/test_tiling.py).
    """

    above_pixels: int = 1024 * 1024
    core: int = 512
    margin: int = 64

    def __post_init__(self) -> None:
        for name in ("above_pixels", "core", "margin"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"tiling {name} must be a whole number of pixels >= 0; got {value!r}")
        if self.core < 1:
            raise ValueError(f"tiling core must be at least 1 pixel; got {self.core}")

    def applies(self, shape: tuple[int, int]) -> bool:
        """Whether a prepared image of ``shape`` (height, width) is tiled."""
        return shape[0] * shape[1] > self.above_pixels

    def largest_tile(self, divisor: int) -> int:
        """The longest side a tile can have for a model of input divisor ``divisor``."""
        return round_up(self.core, divisor) + 2 * round_up(self.margin, divisor)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def core_spans(length: int, core: int, divisor: int) -> list[tuple[int, int]]:
    """[start, stop) of the cores along an axis of ``length`` pixels (a multiple of
    ``divisor``): as few as hold at most ``core`` pixels each (rounded up to a multiple of
    ``divisor``), as equal as multiples of ``divisor`` allow, covering the axis."""
    if length % divisor:
        raise ValueError(f"a tiled axis must be a multiple of {divisor} pixels; got {length}")
    units, per_core = length // divisor, max(1, round_up(core, divisor) // divisor)
    count = -(-units // per_core)
    bounds = [divisor * (units * index // count) for index in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def tiles(shape: tuple[int, int], tiling: Tiling, divisor: int) -> list[tuple[slice, slice, slice, slice]]:
    """Per tile: (rows, columns) of the window in the image, then (rows, columns) of its
    core within the window. Windows are clipped to the image; their sides stay multiples
    of ``divisor``."""
    margin = round_up(tiling.margin, divisor)
    found = []
    row_spans, column_spans = (core_spans(side, tiling.core, divisor) for side in shape)
    for top, bottom in row_spans:
        for left, right in column_spans:
            window_top, window_left = max(0, top - margin), max(0, left - margin)
            window_rows = slice(window_top, min(shape[0], bottom + margin))
            window_columns = slice(window_left, min(shape[1], right + margin))
            core_rows = slice(top - window_top, bottom - window_top)
            core_columns = slice(left - window_left, right - window_left)
            found.append((window_rows, window_columns, core_rows, core_columns))
    return found


def tiled_labels(model: torch.nn.Module, image: np.ndarray, tiling: Tiling, device: torch.device) -> np.ndarray:
    """(H, W) uint8 argmax labels of ``model.predict`` on the prepared (H, W) float32
    ``image``, one tile at a time (H and W multiples of the model's input divisor). Give
    a model passed through :func:`whole_image_grid` if it upsamples with aligned corners."""
    divisor = int(getattr(model, "input_divisor", 1))
    labels = np.empty(image.shape, np.uint8)
    for window_rows, window_columns, core_rows, core_columns in tiles(image.shape, tiling, divisor):
        window = np.ascontiguousarray(image[window_rows, window_columns])
        token = _WINDOW.set((window_rows.start, window_columns.start, *window.shape, *image.shape))
        try:
            probabilities = model.predict(torch.from_numpy(window)[None, None].to(device))
        finally:
            _WINDOW.reset(token)
        core = probabilities[0, :, core_rows, core_columns].argmax(dim=0)
        labels[window_rows, window_columns][core_rows, core_columns] = core.to(torch.uint8).cpu().numpy()
        del probabilities, core
    return labels


class WholeImageUpsample(nn.Module):
    """A 2x bilinear ``align_corners=True`` upsampling that, inside :func:`tiled_labels`,
    samples a tile where the whole image's forward would; elsewhere it is the original
    layer itself (bit-identical)."""

    def __init__(self, original: nn.Upsample) -> None:
        super().__init__()
        self.original = original

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        window = _WINDOW.get()
        if window is None:
            return self.original(features)
        top, left, window_height, window_width, height, width = window
        height_in, width_in = features.shape[-2:]
        rows = _grid_axis(top, window_height, height, height_in)
        columns = _grid_axis(left, window_width, width, width_in)
        grid = torch.stack(torch.meshgrid(columns, rows, indexing="xy"), dim=-1)[None]
        grid = grid.to(features.device).expand(features.shape[0], -1, -1, -1)
        # sampled in float32 whatever the network's precision: a bfloat16 grid would move
        # positions by about a pixel, and torch's bfloat16 grid_sample crashed (SIGSEGV)
        # when two tiled forwards ran at once
        upsampled = F.grid_sample(features.float(), grid, mode="bilinear", padding_mode="border",
                                  align_corners=True).to(features.dtype)
        channels_last = features.is_contiguous(memory_format=torch.channels_last)
        return upsampled.contiguous(memory_format=torch.channels_last) if channels_last else upsampled


def _grid_axis(start: int, window: int, whole: int, size: int) -> torch.Tensor:
    """Sampling positions, in grid_sample's -1..1 (corners aligned), of a tile's doubled
    axis: the tile's ``size`` inputs cover ``window`` of the whole image's ``whole``
    full-resolution pixels from ``start``. Whole-image output index i samples input
    ``i * (n - 1) / (2n - 1)``, n the whole image's size at this level; positions past the
    tile's edge take its edge (they fall in the margin, which is discarded)."""
    stride = window // size
    offset, whole_in = start // stride, whole // stride
    output = torch.arange(2 * offset, 2 * (offset + size), dtype=torch.float64)
    position = output * ((whole_in - 1) / (2 * whole_in - 1)) - offset
    if size == 1:
        return torch.zeros_like(position, dtype=torch.float32)
    return (position * (2 / (size - 1)) - 1).clamp(-1, 1).float()


def whole_image_grid(model: nn.Module) -> nn.Module:
    """Replace, in place, every 2x bilinear ``align_corners=True`` ``nn.Upsample`` of
    ``model`` by a :class:`WholeImageUpsample` of it; returns ``model``. Outside a tiled
    forward the model computes exactly what it did."""
    for parent in list(model.modules()):
        if isinstance(parent, WholeImageUpsample):
            continue  # already replaced
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Upsample) and child.mode == "bilinear" and child.align_corners \
                    and child.size is None and child.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0)):
                setattr(parent, name, WholeImageUpsample(child))
    return model
