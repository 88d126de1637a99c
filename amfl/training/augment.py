"""Training augmentations: geometry, and the ways a real microscope image differs from a
clean Pommier or synthetic sample (intensity response, camera offset and uneven
illumination, focus, photon and read noise, chromosome scale).

Each augmentation takes one network-ready sample, image (1, H, W) float32 in 0..1 and labels
(H, W) int64, and returns a sample of the same shape. The photometric ones leave the image
as a camera would give it (background no longer 0, maximum no longer 1); the sample is then
normalised again by the model's :class:`~amfl.preprocessing.Preprocessor` (background
subtracted, scaled to 0..1), the path every image takes at inference, so the network learns
to read what inference hands it, not the augmentation's own units.

The ranges are chosen to cover what the real ADIR crops show beside the Pommier samples:
chromosomes about 19 % narrower (``scale``), DAPI glow and saturated centres
(``gain_gamma``), a few grey levels of uneven background (``background``) and visible noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Sample = tuple[Tensor, Tensor]

#: Relative change of the chromosome scale: the side is multiplied by 1 +- this.
SCALE_RANGE = 0.15
#: Gamma drawn log-uniformly from [1 / GAMMA_MAX, GAMMA_MAX]; gain uniformly from GAIN_RANGE
#: (above 1 the brightest pixels saturate at 1, as an over-exposed DAPI centre does).
GAMMA_MAX = 1.5
GAIN_RANGE = (0.7, 1.5)
#: Camera offset and the peak-to-peak height of a linear illumination gradient, as
#: fractions of the chromosomes' maximum.
OFFSET_MAX = 0.2
GRADIENT_MAX = 0.2
#: Gaussian blur sigma drawn from [0.3, BLUR_SIGMA_MAX] pixels.
BLUR_SIGMA_MAX = 1.2
#: Photons at the brightest pixel, drawn log-uniformly (fewer photons: more Poisson noise),
#: and the largest standard deviation of the added Gaussian read noise.
PHOTON_RANGE = (30.0, 1000.0)
READ_NOISE_MAX = 0.03
#: Intensity jitter: the image is multiplied by a factor drawn from [1 - x, 1 + x].
JITTER_AMPLITUDE = 0.1


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def _log_uniform(low: float, high: float) -> float:
    return math.exp(_uniform(math.log(low), math.log(high)))


def flips(image: Tensor, labels: Tensor) -> Sample:
    """Mirror left-right and top-bottom, each with probability 1/2."""
    for axis in (-1, -2):
        if torch.rand(()) < 0.5:
            image, labels = image.flip(axis), labels.flip(axis)
    return image, labels


def rot90(image: Tensor, labels: Tensor) -> Sample:
    """Turn by 0, 90, 180 or 270 degrees (square samples only)."""
    turns = int(torch.randint(0, 4, ()))
    return image.rot90(turns, (-2, -1)), labels.rot90(turns, (-2, -1))


def scale(image: Tensor, labels: Tensor) -> Sample:
    """Resize by a factor in 1 +- SCALE_RANGE about the centre, keeping the side: a smaller
    sample is padded with background, a larger one cropped (the pair sits in the middle)."""
    height, width = image.shape[-2:]
    factor = _uniform(1 - SCALE_RANGE, 1 + SCALE_RANGE)
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)
    resized_labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
    return _fit(resized, (height, width)), _fit(resized_labels, (height, width))


def _fit(array: Tensor, shape: tuple[int, int]) -> Tensor:
    """Centre-crop or zero-pad the last two axes of ``array`` to ``shape``."""
    for axis, target in zip((-2, -1), shape, strict=True):
        excess = array.shape[axis] - target
        if excess > 0:
            array = array.narrow(axis, excess // 2, target)
        elif excess < 0:
            before = -excess // 2
            padding = [0, 0, 0, 0]
            padding[0 if axis == -1 else 2] = before
            padding[1 if axis == -1 else 3] = -excess - before
            array = F.pad(array, padding)
    return array


def random_crop(image: Tensor, labels: Tensor, size: int) -> Sample:
    """A ``size`` x ``size`` window at a uniformly random place: training on smaller windows
    makes each step cheaper (``--crop_size``); validation and inference see whole samples."""
    height, width = image.shape[-2:]
    top, left = int(torch.randint(0, height - size + 1, ())), int(torch.randint(0, width - size + 1, ()))
    return image[..., top:top + size, left:left + size], labels[..., top:top + size, left:left + size]


def gain_gamma(image: Tensor, labels: Tensor) -> Sample:
    """Non-linear response and exposure: ``(gain * image ** gamma)`` clipped at saturation."""
    gamma = _log_uniform(1 / GAMMA_MAX, GAMMA_MAX)
    return (_uniform(*GAIN_RANGE) * image.pow(gamma)).clamp(0, 1), labels


def background(image: Tensor, labels: Tensor) -> Sample:
    """A camera offset plus a linear illumination gradient in a random direction."""
    height, width = image.shape[-2:]
    angle = _uniform(0, 2 * math.pi)
    rows = torch.linspace(-0.5, 0.5, height)[:, None]
    columns = torch.linspace(-0.5, 0.5, width)[None, :]
    ramp = math.sin(angle) * rows + math.cos(angle) * columns
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min()).clamp_min(1e-12)
    level = _uniform(0, OFFSET_MAX) + _uniform(0, GRADIENT_MAX) * ramp
    return image + level, labels


def blur(image: Tensor, labels: Tensor) -> Sample:
    """Defocus: a Gaussian blur of random sigma."""
    sigma = _uniform(0.3, BLUR_SIGMA_MAX)
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    blurred = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1))
    return blurred[0], labels


def noise(image: Tensor, labels: Tensor) -> Sample:
    """Photon (Poisson) noise at a random exposure, then Gaussian read noise."""
    photons = _log_uniform(*PHOTON_RANGE)
    noisy = torch.poisson(image.clamp(min=0) * photons) / photons
    return noisy + _uniform(0, READ_NOISE_MAX) * torch.randn_like(image), labels


def jitter(image: Tensor, labels: Tensor) -> Sample:
    """Scale the intensities by 1 +- JITTER_AMPLITUDE (clipped to 0..1)."""
    return (image * (1 + JITTER_AMPLITUDE * (2 * torch.rand(()) - 1))).clamp(0, 1), labels


#: Every augmentation by name, in the order a sample goes through them: geometry, then the
#: optics and the camera. ``--augment`` picks any of them; order on the command line is ignored.
AUGMENTATIONS: dict[str, Callable[[Tensor, Tensor], Sample]] = {
    "scale": scale, "flips": flips, "rot90": rot90, "jitter": jitter, "gain_gamma": gain_gamma,
    "blur": blur, "background": background, "noise": noise,
}
#: The augmentations that change intensities the way the camera does, after which the
#: sample is normalised again by the model's preprocessing.
PHOTOMETRIC = frozenset({"gain_gamma", "blur", "background", "noise"})
#: Each photometric augmentation is applied to a sample with this probability, so clean
#: samples stay in the mix: a masked crop (outside the pair set to 0) and the Pommier test
#: are clean. With all four applied to every sample, the bundled model fine-tuned on the
#: real-image mixture fell from 94 to 72 validation Dice on the Pommier pairs in three
#: epochs (results/real-image/README.md, run v1).
PHOTOMETRIC_PROBABILITY = 0.5
#: The set used to train the real-image model (all but ``jitter``, which gain covers).
REAL_IMAGE_AUGMENTATIONS = ("scale", "flips", "rot90", "gain_gamma", "blur", "background", "noise")
