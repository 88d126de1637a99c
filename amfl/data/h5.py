"""Read the original HDF5 files when a user has them.

``LowRes_13434_overlapping_pairs.h5`` stores ``dataset_1`` (N, 94, 93, 2) int64, grey then
label, with raw labels; the cleaned variant the AMFL authors trained on stores the same
layout under ``13434_overlapping_chrom_pairs_LowRes``. Both load into :class:`OverlapPairs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amfl.data.pairs import OverlapPairs

#: Dataset names in the published files, and whether their labels are already cleaned.
KNOWN_DATASETS = {"dataset_1": False, "13434_overlapping_chrom_pairs_LowRes": True}
READ_CHUNK = 1024


class H5FormatError(ValueError):
    """The file is not one of the published HDF5 layouts; the message names the file."""


def _pick_dataset(handle, path: Path):
    for name in KNOWN_DATASETS:
        if name in handle:
            return name, handle[name]
    found = ", ".join(sorted(handle.keys())) or "nothing"
    raise H5FormatError(
        f"{path}: expected a dataset named {' or '.join(KNOWN_DATASETS)}, found {found}"
    )


def read_h5(path: Path | str, progress: bool = True) -> tuple[OverlapPairs, bool]:
    """The pairs stored in ``path`` and whether their labels are already cleaned."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise H5FormatError(f"{path}: file not found; expected LowRes_13434_overlapping_pairs.h5 or its cleaned variant")
    try:
        with h5py.File(path, "r") as handle:
            name, dataset = _pick_dataset(handle, path)
            if dataset.ndim != 4 or dataset.shape[-1] != 2 or dataset.shape[0] == 0:
                raise H5FormatError(
                    f"{path}: dataset {name} has shape {dataset.shape}, expected (N, H, W, 2) "
                    "with N > 0, holding grey and label channels"
                )
            chunks = [
                OverlapPairs.from_stacked(dataset[start : start + READ_CHUNK])
                for start in tqdm(
                    range(0, dataset.shape[0], READ_CHUNK),
                    desc=f"reading {path.name}",
                    unit="chunk",
                    disable=not progress,
                )
            ]
    except OSError as error:
        raise H5FormatError(f"{path}: not a readable HDF5 file ({error})") from error
    except ValueError as error:
        if isinstance(error, H5FormatError):
            raise
        raise H5FormatError(f"{path}: {error}") from error
    pairs = OverlapPairs(
        np.concatenate([chunk.images for chunk in chunks]),
        np.concatenate([chunk.labels for chunk in chunks]),
    )
    return pairs, KNOWN_DATASETS[name]
