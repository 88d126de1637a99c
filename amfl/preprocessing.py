"""The one preprocessing path shared by training, evaluation, the CLI and the app.

A model sees a float32 image scaled to 0..1, with bright chromosomes on a background of 0,
padded to a size its encoder can halve four times (a multiple of 16) and at least the
training size. The dataset protocol of the paper pads 94 x 93 samples to 128 x 128. Padding
is centred (extra row/column at the bottom/right), which matches how the AMFL authors padded
their test masks: 17 rows above and below, 17 columns left and 18 right.

How a model was trained to see its inputs belongs to the model: :class:`Preprocessor` is
saved beside the weights as ``preprocessor_config.json`` (as transformers' image processors
are), written by the trainer and read by the app, the CLI, ``amfl.evaluate`` and training.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amfl.covered_chromosomes import merge_covered_chromosomes_batch
from amfl.crossing_arms import name_straight_through_batch
from amfl.naming import NAMINGS, apply_naming
from amfl.pair_parts import drop_small_parts_batch
from amfl.piece_names import rename_cut_pieces_batch
from amfl.small_overlaps import StrayOverlapTests, merge_stray_overlaps_batch

#: The encoder halves the size four times, so inputs must be a multiple of this.
SIZE_MULTIPLE = 16
#: Network input side of the paper (Section III.A.1), pixels.
TRAINING_SIZE = 128
#: Image pad value used by the paper (Section III.A.1); our default is the image's own
#: background (0 for the Pommier data), which does not invent a bright frame.
PAPER_IMAGE_PAD_VALUE = 255
#: File of the model folder holding its :class:`Preprocessor`.
PREPROCESSOR_FILE = "preprocessor_config.json"

#: ``Preprocessor.background`` choices: subtract the median of the image's outermost pixels
#: (the border of a chromosome image is nearly all background), or use the grey as it is.
BACKGROUNDS = ("border_median", "none")
#: ``Preprocessor.polarity`` choices: invert an image whose background is light, or never.
POLARITIES = ("auto", "dark_background")
#: ``Preprocessor.scaling`` choices: each image divided by its own maximum.
SCALINGS = ("per_image_max",)


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


@dataclass(frozen=True)
class Prepared:
    """Network-ready images and what is needed to map predictions back.

    Attributes:
        images: (..., H', W') float32 in 0..1, padded.
        padding: what was added on each side (the same for every image of the batch).
        inverted: (...) bool, per image: its background was light and it was inverted.
    """

    images: np.ndarray
    padding: Padding
    inverted: np.ndarray

    def unpadded(self) -> np.ndarray:
        """The images as the network sees them, at their own size (the padding cropped off):
        the intensities :meth:`Preprocessor.finish` needs beside the labels."""
        return self.padding.crop(self.images)


@dataclass(frozen=True)
class Preprocessor:
    """How a model's inputs are prepared, saved with the model.

    Attributes:
        background: ``"border_median"`` subtracts the median of the outermost pixels, so an
            uneven camera offset does not look like chromosome; ``"none"`` keeps the grey.
        polarity: ``"auto"`` inverts an image whose background is nearer its brightest
            than its darkest value (bright-field or inverted exports); ``"dark_background"``
            never inverts.
        pad_value: grey value of the padding, in the units of the image after the
            background step (0: the background itself; the paper used 255).
        minimum_size: smaller images are padded to this side, pixels (the training size,
            so a small crop sees the same amount of surrounding background as in training).
        size_divisor: padded height and width are multiples of this (the model's
            ``input_divisor``, at least 16).
        scaling: ``"per_image_max"`` divides each image by its own maximum, which makes
            8-, 12- and 16-bit inputs comparable and keeps the brighter overlap (grey sums
            over 255 in the Pommier data) within 0..1.
        naming: how the output's chromosomes 1 and 2 are named (:mod:`amfl.naming`):
            ``"network"`` as the network labels them (trained on the strict names),
            ``"area"`` renamed so that 1 is the smaller (trained with ``--pair_naming free``).
            The one step here on the way out, kept with the model for the same reason.
        min_overlap_pixels: overlap parts of fewer pixels are given to the chromosome around
            them before naming (:mod:`amfl.small_overlaps`); 0 keeps them all.
        min_overlap_border_share: so are overlap parts on whose border one chromosome holds
            less than this share (0..0.5) of the chromosome pixels; 0 keeps them all.
        min_overlap_brightness: so are overlap parts whose mean intensity is below this many
            times that of the chromosome pixels around them; 0 keeps them all.
        min_part_share: labelled parts with fewer pixels in the image's middle half than this
            share (0..1) of the part with the most there are dropped first, pieces of
            neighbours in a pair crop (:mod:`amfl.pair_parts`); 0 keeps them all, 1 that part
            alone.
        cut_piece_share: after the stray overlaps, a piece of chromosome 1 or 2 cut off from its
            body, touching the other's body and with fewer pixels than this share (0..1) of its
            own body, takes the other's name (:mod:`amfl.piece_names`); 0 leaves the names.
        crossing_arms: then, in a cluster where two chromosomes cross (one overlap part, four
            arms), opposite arms take one name (:mod:`amfl.crossing_arms`); false leaves them.
        crossing_arm_reach: with ``crossing_arms``, a piece beside the overlap is an arm only if
            its farthest pixel lies this many pixels or more from the overlap, so slivers along
            a painted overlap part that is no crossing are no arms; 0 takes every piece.
        min_chromosome_pixels: last, in a cluster with overlap, chromosome 1 or 2 with fewer
            pixels than this is taken to lie wholly under its partner and becomes overlap
            (:mod:`amfl.covered_chromosomes`); 0 leaves it.
    """

    background: str = "border_median"
    polarity: str = "auto"
    pad_value: float = 0.0
    minimum_size: int = TRAINING_SIZE
    size_divisor: int = SIZE_MULTIPLE
    scaling: str = "per_image_max"
    naming: str = "network"
    min_overlap_pixels: int = 0
    min_overlap_border_share: float = 0.0
    min_overlap_brightness: float = 0.0
    min_part_share: float = 0.0
    cut_piece_share: float = 0.0
    crossing_arms: bool = False
    crossing_arm_reach: int = 0
    min_chromosome_pixels: int = 0

    def __post_init__(self) -> None:
        settings = (("background", BACKGROUNDS), ("polarity", POLARITIES), ("scaling", SCALINGS), ("naming", NAMINGS))
        for name, choices in settings:
            if getattr(self, name) not in choices:
                raise ValueError(f"preprocessor {name} must be one of {choices}; got {getattr(self, name)!r}")
        for name, least in (("minimum_size", 1), ("size_divisor", 1), ("min_overlap_pixels", 0),
                             ("crossing_arm_reach", 0), ("min_chromosome_pixels", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"preprocessor {name} must be a whole number of pixels >= {least}; got {value!r}")
        for name, most in (("min_overlap_border_share", 0.5), ("min_overlap_brightness", 10.0), ("min_part_share", 1.0),
                           ("cut_piece_share", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= most:
                raise ValueError(f"preprocessor {name} must be a number from 0 to {most}; got {value!r}")
        if not isinstance(self.crossing_arms, bool):
            raise ValueError(f"preprocessor crossing_arms must be true or false; got {self.crossing_arms!r}")
        if not np.isfinite(self.pad_value):
            raise ValueError(f"preprocessor pad_value must be a finite grey value; got {self.pad_value!r}")

    @classmethod
    def for_model(cls, model: Any, **settings: Any) -> Preprocessor:
        """The preprocessor a model needs: ``settings`` on top of the defaults, with the
        size divisor raised to the model's ``input_divisor`` when that is larger."""
        divisor = max(int(settings.pop("size_divisor", SIZE_MULTIPLE)), int(getattr(model, "input_divisor", 1)))
        return cls(size_divisor=divisor, **settings)

    def network_size(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Padded (height, width) for an image of ``shape``."""
        return network_size(shape, self.size_divisor, self.minimum_size)

    def padding(self, shape: tuple[int, int]) -> Padding:
        """What :meth:`prepare` adds around an image of ``shape``: centred to :meth:`network_size`."""
        return centred_padding(shape, self.network_size(shape))

    def pad_labels(self, labels: np.ndarray) -> np.ndarray:
        """Label maps (..., H, W) padded with background to the frame :meth:`prepare` gives their
        images: scores then count the same pixels, and the same image diagonal, as the test's."""
        return pad(labels, self.padding(labels.shape[-2:]), 0)

    def foreground(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images (..., H, W) of either polarity -> float32 chromosomes bright on a
        background of 0 (negatives clipped), and per image whether it was inverted."""
        images = np.asarray(images, dtype=np.float32)
        if self.background == "none":
            level = np.zeros(images.shape[:-2] + (1, 1), np.float32)
        else:
            level = border_median(images)[..., None, None]
        if self.polarity == "auto":
            low = images.min(axis=(-2, -1), keepdims=True)
            high = images.max(axis=(-2, -1), keepdims=True)
            light = level > (low + high) / 2
        else:
            light = np.zeros_like(level, dtype=bool)
        foreground = np.where(light, level - images, images - level)
        return np.clip(foreground, 0, None), light[..., 0, 0]

    def normalise(self, images: np.ndarray) -> np.ndarray:
        """The intensity steps of :meth:`prepare` alone (background, polarity, scaling to
        0..1), for images already at network size: training augmentations that change the
        intensities as a camera would are undone here the way inference undoes them."""
        return scale_to_unit(self.foreground(images)[0])

    def prepare(self, images: np.ndarray) -> Prepared:
        """Images (..., H, W) -> :class:`Prepared`, padded centred to :meth:`network_size`."""
        foreground, inverted = self.foreground(images)
        padding = self.padding(foreground.shape[-2:])
        return Prepared(scale_to_unit(pad(foreground, padding, self.pad_value)), padding, inverted)

    @property
    def stray_overlap_tests(self) -> StrayOverlapTests:
        """The tests that find overlap parts which are no crossing (:mod:`amfl.small_overlaps`)."""
        return StrayOverlapTests(self.min_overlap_pixels, self.min_overlap_border_share, self.min_overlap_brightness)

    def finish(self, labels: np.ndarray, images: np.ndarray, whole_field: bool = False) -> np.ndarray:
        """The network's label maps (..., H, W) as the model's output, given the images
        (..., H, W) it saw (:meth:`Prepared.unpadded`): small parts dropped, stray overlap parts
        merged, cut-off pieces renamed, crossing arms named straight through, chromosomes of a few
        pixels given to the overlap, then named (the steps on the way out, the same in the app
        and in scoring); a ``whole_field`` of many parts skips :meth:`without_crop_steps`'s."""
        steps = self.without_crop_steps() if whole_field else self
        kept = drop_small_parts_batch(labels, steps.min_part_share)
        merged = merge_stray_overlaps_batch(kept, images, steps.stray_overlap_tests)
        renamed = rename_cut_pieces_batch(merged, steps.cut_piece_share)
        straight = name_straight_through_batch(renamed, steps.crossing_arms, steps.crossing_arm_reach)
        covered = merge_covered_chromosomes_batch(straight, steps.min_chromosome_pixels)
        return apply_naming(covered, steps.naming)

    def without_crop_steps(self) -> Preprocessor:
        """The output steps of a whole field of many parts: those that assume a crop of one pair
        (small parts dropped, cut pieces and crossing arms renamed, covered chromosomes merged)
        off, the rest as saved."""
        return dataclasses.replace(self, min_part_share=0.0, cut_piece_share=0.0, crossing_arms=False,
                                   crossing_arm_reach=0, min_chromosome_pixels=0)

    def without_output_steps(self, naming: str | None = None) -> Preprocessor:
        """This preprocessing with every step on the way out off but the naming (``naming``
        instead, if given): the network's labels as they come, for the sweeps and timings
        that apply the steps themselves."""
        return dataclasses.replace(
            self.without_crop_steps(), min_overlap_pixels=0, min_overlap_border_share=0.0,
            min_overlap_brightness=0.0, naming=self.naming if naming is None else naming)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "preprocessor config") -> Preprocessor:
        """Rebuild from saved values; an unknown key is refused rather than ignored, since
        it would mean the model expects a step this version of amfl does not apply."""
        known = {option.name for option in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source} has settings this version of amfl does not know: {unknown}; known: "
                f"{sorted(known)}. Upgrade amfl to use this model."
            )
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}") from None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / PREPROCESSOR_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> Preprocessor:
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of settings, not {type(values).__name__}")
        return cls.from_dict(values, str(path))


def border_median(images: np.ndarray) -> np.ndarray:
    """Per image (last two axes), the median of its outermost rows and columns: the
    background level, since a chromosome image's border is nearly all background."""
    border = np.concatenate(
        [images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], axis=-1
    )
    return np.median(border, axis=-1)


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
    """Padded (height, width) for a model: multiples of ``multiple``, at least ``minimum``."""
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

    Values below 0 (spline undershoot at edges) are clipped to the background, 0.
    An all-zero image stays zero.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0, None)
    peaks = images.max(axis=(-2, -1), keepdims=True)
    return np.divide(images, peaks, out=np.zeros_like(images), where=peaks > 0)
