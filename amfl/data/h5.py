"""Read the original HDF5 files when a user has them.

``LowRes_13434_overlapping_pairs.h5`` stores ``dataset_1`` (N, 94, 93, 2) int64, grey then
label, with raw labels; the cleaned variant the AMFL authors trained on stores the same
layout under ``13434_overlapping_chrom_pairs_LowRes``. Both load into :class:`OverlapPairs`.

Anything else (not a file, not HDF5, damaged, another layout, values the published files
cannot hold) is an :class:`H5FormatError` whose message names the file, what is wrong and
what was expected. Values are checked chunk by chunk as they are read: a float file is
accepted only when every value is a whole number (so nothing is lost converting it), grey
values must fit int16 and labels must lie in 0-4 (0-3 in the cleaned variant).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amfl.data.pairs import RAW_ERROR_LABEL, OverlapPairs

#: Dataset names in the published files, and whether their labels are already cleaned.
KNOWN_DATASETS = {"dataset_1": False, "13434_overlapping_chrom_pairs_LowRes": True}
READ_CHUNK = 1024
#: What a readable file holds, for the error messages.
EXPECTED_ARRAY = (
    "(N, H, W, 2) whole numbers: grey, then labels 0-3 (0 background, 1 and 2 the chromosomes, "
    "3 their overlap; the raw dataset_1 also 4)"
)
EXPECTED_LAYOUT = f"one dataset named {' or '.join(KNOWN_DATASETS)} of {EXPECTED_ARRAY}"
EXPECTED_FILE = (
    f"expected an HDF5 file like LowRes_13434_overlapping_pairs.h5 or its cleaned variant, holding {EXPECTED_LAYOUT}"
)
#: Largest label of the cleaned variant (cleaning removes the raw file's 4s).
CLEAN_MAX_LABEL = 3


class H5FormatError(ValueError):
    """The file is not one of the published HDF5 layouts; the message names the file."""


def _check_path(path: Path) -> None:
    """Fail before h5py does, with a message for each way a path can be no data file."""
    if path.is_dir():
        raise H5FormatError(f"{path}: is a directory, not a file; {EXPECTED_FILE}")
    if not path.exists():
        raise H5FormatError(f"{path}: file not found; {EXPECTED_FILE}")
    if not path.is_file():
        raise H5FormatError(f"{path}: is not a regular file; {EXPECTED_FILE}")
    if path.stat().st_size == 0:
        raise H5FormatError(f"{path}: not a readable HDF5 file: it is empty (0 bytes); {EXPECTED_FILE}")


def _unreadable(path: Path, error: Exception) -> H5FormatError:
    """The error for a file h5py cannot open or read: not HDF5 at all, or damaged."""
    import h5py

    try:
        signed = h5py.is_hdf5(path)
    except OSError:
        signed = True  # it could not even be probed: report h5py's own reason
    if not signed:
        return H5FormatError(
            f"{path}: not a readable HDF5 file: it has no HDF5 signature (is it another kind of "
            f"file?); {EXPECTED_FILE}"
        )
    return H5FormatError(
        f"{path}: not a readable HDF5 file: it is damaged or truncated ({error}); {EXPECTED_FILE}"
    )


def _pick_dataset(handle, path: Path):
    import h5py

    for name in KNOWN_DATASETS:
        if name in handle:
            dataset = handle.get(name)
            if dataset is None:
                raise H5FormatError(f"{path}: {name} is a broken link; expected {EXPECTED_LAYOUT}")
            if not isinstance(dataset, h5py.Dataset):
                raise H5FormatError(
                    f"{path}: {name} is a {type(dataset).__name__.lower()}, not a dataset; expected {EXPECTED_LAYOUT}"
                )
            return name, dataset
    found = ", ".join(sorted(handle.keys())) or "nothing"
    raise H5FormatError(
        f"{path}: expected a dataset named {' or '.join(KNOWN_DATASETS)}, found {found}; "
        f"that dataset holds {EXPECTED_ARRAY}"
    )


def _check_layout(dataset, name: str, path: Path) -> None:
    """Shape and dtype, from the header alone (before any sample is read)."""
    shape = dataset.shape
    if shape is None or len(shape) != 4 or shape[-1] != 2 or 0 in shape:
        raise H5FormatError(
            f"{path}: dataset {name} has shape {shape}, expected (N, H, W, 2) "
            "with N > 0, holding grey and label channels"
        )
    if dataset.dtype.kind not in "iuf":
        raise H5FormatError(
            f"{path}: dataset {name} has dtype {dataset.dtype}, expected whole numbers "
            "(the published files store int64; a float dataset is read when its values are whole)"
        )


def _first(bad: np.ndarray, values: np.ndarray, start: int) -> tuple[int, object]:
    """(sample index in the file, value) of the first flagged pixel of a (n, H, W) block."""
    sample = int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
    value = values[sample][bad[sample]][0]
    return start + sample, value.item()


def _check_values(block: np.ndarray, start: int, name: str, path: Path, max_label: int) -> None:
    """Refuse values that would be changed or misread turning ``block`` into OverlapPairs."""
    where = f"{path}: dataset {name}"
    channels = {"grey": block[..., 0], "label": block[..., 1]}
    if block.dtype.kind == "f":
        for channel, values in channels.items():
            bad = ~np.isfinite(values)
            if bad.any():
                sample, value = _first(bad, values, start)
                raise H5FormatError(
                    f"{where} holds a non-finite {channel} value ({value}) in sample {sample}; "
                    "expected whole numbers: grey levels and labels 0-4"
                )
            bad = values != np.floor(values)
            if bad.any():
                sample, value = _first(bad, values, start)
                raise H5FormatError(
                    f"{where} holds a fractional {channel} value ({value:g}) in sample {sample}; "
                    "expected whole numbers: grey levels (0 to about 400, as the published int64 "
                    "files store them, not scaled to 0..1) and labels 0-4"
                )
    grey, labels = channels["grey"], channels["label"]
    limits = np.iinfo(np.int16)
    bad = (grey < limits.min) | (grey > limits.max)
    if bad.any():
        sample, value = _first(bad, grey, start)
        raise H5FormatError(
            f"{where} holds grey value {value:g} in sample {sample}, outside int16 "
            f"({limits.min}..{limits.max}); expected the published grey levels (0 to about 400)"
        )
    bad = (labels < 0) | (labels > max_label)
    if bad.any():
        sample, value = _first(bad, labels, start)
        if max_label == CLEAN_MAX_LABEL and value == RAW_ERROR_LABEL:
            expected = (f"expected labels 0-{CLEAN_MAX_LABEL} only in the cleaned dataset {name} "
                        f"({RAW_ERROR_LABEL}, the raw file's spline overshoot, is what cleaning removes)")
        else:
            expected = (f"label values must lie in 0..{max_label}: expected 0 background, 1 and 2 the "
                        "chromosomes, 3 their overlap")
            expected += ", 4 the raw file's spline overshoot" if max_label > CLEAN_MAX_LABEL else ""
        raise H5FormatError(f"{where} holds label {value:g} in sample {sample}; {expected}")


def read_h5(path: Path | str, progress: bool = True) -> tuple[OverlapPairs, bool]:
    """The pairs stored in ``path`` and whether their labels are already cleaned."""
    import h5py

    path = Path(path)
    _check_path(path)
    try:
        with h5py.File(path, "r") as handle:
            name, dataset = _pick_dataset(handle, path)
            _check_layout(dataset, name, path)
            max_label = CLEAN_MAX_LABEL if KNOWN_DATASETS[name] else RAW_ERROR_LABEL
            chunks = []
            for start in tqdm(
                range(0, dataset.shape[0], READ_CHUNK),
                desc=f"reading {path.name}",
                unit="chunk",
                disable=not progress,
            ):
                block = dataset[start : start + READ_CHUNK]
                _check_values(block, start, name, path, max_label)
                chunks.append(OverlapPairs.from_stacked(block))
    except (OSError, KeyError, RuntimeError) as error:
        raise _unreadable(path, error) from error
    except ValueError as error:
        if isinstance(error, H5FormatError):
            raise
        raise H5FormatError(f"{path}: {error}") from error
    pairs = OverlapPairs(
        np.concatenate([chunk.images for chunk in chunks]),
        np.concatenate([chunk.labels for chunk in chunks]),
    )
    return pairs, KNOWN_DATASETS[name]
