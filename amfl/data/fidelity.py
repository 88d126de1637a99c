"""How faithful is the rebuild? Compare it with the AMFL authors' own test label maps.

``authors_test_masks_even.npz`` holds 1,209 of their 128 x 128 test masks, padded 17 rows
above and below and 17 columns left (18 right). Each must have a twin in the rebuild with an
identical foreground (label > 0); the labels then differ only where cleaning acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amfl.data.pairs import OverlapPairs
from amfl.preprocessing import centred_padding

AUTHORS_MASKS_FILE = "authors_test_masks_even.npz"
#: Pixel-difference thresholds the project reports (of 94 x 93 = 8,742 pixels).
DIFFERENCE_LIMITS = (44, 9)


@dataclass(frozen=True)
class FidelityReport:
    masks: int
    identical_foreground: int
    #: limit (pixels) -> number of masks whose labels differ in at most that many pixels.
    within: dict[int, int]
    worst_difference: int
    pixels: int

    def __str__(self) -> str:
        lines = [
            f"authors' test masks compared: {self.masks}",
            f"twin with identical foreground: {self.identical_foreground} "
            f"({100 * self.identical_foreground / self.masks:.2f}%)",
        ]
        lines += [
            f"labels differ in at most {limit} of {self.pixels:,} pixels: {count} "
            f"({100 * count / self.masks:.2f}%)"
            for limit, count in self.within.items()
        ]
        lines.append(f"largest label difference: {self.worst_difference} pixels")
        return "\n".join(lines)


def load_authors_masks(path: Path | str, sample_shape: tuple[int, int]) -> np.ndarray:
    """The authors' masks cropped back to ``sample_shape`` (undoing their padding)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found; expected the authors' test masks ({AUTHORS_MASKS_FILE})")
    with np.load(path, allow_pickle=False) as archive:
        if "masks" not in archive:
            raise ValueError(f"{path}: no array named 'masks' (found {', '.join(archive.files)})")
        masks = archive["masks"]
    if masks.ndim != 3:
        raise ValueError(f"{path}: masks must be (N, H, W), got {masks.shape}")
    return centred_padding(sample_shape, masks.shape[1:]).crop(masks)


def _foreground_key(labels: np.ndarray) -> bytes:
    return np.packbits(labels > 0).tobytes()


def compare_with_authors(rebuilt: OverlapPairs, authors_masks: np.ndarray) -> FidelityReport:
    """Find each authors' mask's foreground twin in ``rebuilt`` and count label differences."""
    twins = {_foreground_key(labels): index for index, labels in enumerate(rebuilt.labels)}
    differences = []
    for mask in authors_masks:
        index = twins.get(_foreground_key(mask))
        if index is not None:
            differences.append(int((rebuilt.labels[index] != mask).sum()))
    differences_array = np.array(differences, dtype=int)
    return FidelityReport(
        masks=len(authors_masks),
        identical_foreground=len(differences),
        within={limit: int((differences_array <= limit).sum()) for limit in DIFFERENCE_LIMITS},
        worst_difference=int(differences_array.max()) if differences else -1,
        pixels=int(np.prod(rebuilt.sample_shape)),
    )
