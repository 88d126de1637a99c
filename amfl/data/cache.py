"""Compressed on-disk cache of built arrays, written atomically.

A build takes about a minute; a reload must take a second or two. Arrays go into one
``.npz`` written to a temporary name in the same folder and renamed into place, so an
interrupted build never leaves a half-written cache behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "AMFL_CACHE"


def cache_dir() -> Path:
    """``$AMFL_CACHE`` if set, else ``~/.cache/amfl`` (outside any checkout)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "amfl").expanduser()


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (compressed npz) via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The named arrays from ``path``, or None when the file is absent or unreadable
    (a stale or damaged cache is rebuilt rather than trusted)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in names}
    except (OSError, ValueError, KeyError):
        return None
