"""Locate, verify and read the two Pommier source images (DAPI.tif, Cy3.tif).

The rebuilt dataset is only as trustworthy as its inputs, so every read is preceded by a
SHA-256 check against the published files; a wrong or truncated file stops the build with a
one-line message instead of silently producing a different dataset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: SHA-256 of the public source images (jeanpat/DeepFISH, ``dataset/``).
SOURCE_SHA256 = {
    "DAPI.tif": "990e2fab218d6bf0690fd1e0ea04273962d4bdfdd351ca68323ebef5185724a2",
    "Cy3.tif": "fc5d18dcc0557668ac69930c576995b1a4964fa6dcbfabcc05691ade2359585f",
}
#: Shape (rows, columns) of both source images.
SOURCE_SHAPE = (1024, 1536)
PUBLIC_ORIGIN = (
    "https://github.com/jeanpat/DeepFISH (folder dataset/) or the Kaggle dataset "
    "jeanpat/overlapping-chromosomes"
)
#: Environment variable naming a folder that holds DAPI.tif and Cy3.tif.
DATA_ENV = "AMFL_DATA"
#: Raw-file address of each source image in the public origin (checked by SHA-256 after download).
DOWNLOAD_URL = "https://raw.githubusercontent.com/jeanpat/DeepFISH/master/dataset/{name}"


class SourceError(RuntimeError):
    """A source file is missing, altered or unreadable; the message names the file."""


@dataclass(frozen=True)
class SourceImages:
    """The two 12-bit channels of the metaphase, as read from disk (uint16, 1024 x 1536)."""

    dapi: np.ndarray
    cy3: np.ndarray


def default_source_dir() -> Path:
    """``$AMFL_DATA`` if set, else the ``shared/data`` folder beside this checkout."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_source_file(folder: Path, name: str) -> Path:
    """Return the path of ``name`` in ``folder`` after checking it exists and its checksum."""
    path = Path(folder) / name
    if not path.is_file():
        raise SourceError(
            f"{path}: file not found; expected the Pommier source image {name} "
            f"(get it from {PUBLIC_ORIGIN}, or set {DATA_ENV} to the folder holding it)"
        )
    actual = sha256_of(path)
    if actual != SOURCE_SHA256[name]:
        raise SourceError(
            f"{path}: SHA-256 {actual[:16]}... does not match the published "
            f"{SOURCE_SHA256[name][:16]}...; the file is truncated or not the Pommier {name}"
        )
    return path


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        image = tifffile.imread(path)
    except Exception as error:  # tifffile raises several types for corrupt files
        raise SourceError(f"{path}: not a readable TIFF ({error})") from error
    if image.shape != SOURCE_SHAPE or image.dtype != np.uint16:
        raise SourceError(
            f"{path}: expected a {SOURCE_SHAPE[0]} x {SOURCE_SHAPE[1]} uint16 image, "
            f"got shape {image.shape} and dtype {image.dtype}"
        )
    return image


def load_sources(folder: Path | str | None = None) -> SourceImages:
    """Verify and read DAPI.tif and Cy3.tif from ``folder`` (default: see default_source_dir)."""
    folder = Path(folder) if folder is not None else default_source_dir()
    dapi_path = verify_source_file(folder, "DAPI.tif")
    cy3_path = verify_source_file(folder, "Cy3.tif")
    return SourceImages(_read_tiff(dapi_path), _read_tiff(cy3_path))


def sources_available(folder: Path | str) -> bool:
    """Whether ``folder`` holds both source images (checksums are checked when they are read)."""
    return all((Path(folder) / name).is_file() for name in SOURCE_SHA256)


def download_sources(folder: Path | str, timeout: float = 30.0) -> Path:
    """Fetch DAPI.tif and Cy3.tif from the public origin into ``folder`` and return it.

    Each file is checked against its published SHA-256 before it replaces anything, so a
    failed or altered download leaves nothing behind; valid files already there are kept.
    Offline, or on any download problem, raises SourceError naming the file and the address.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, expected in SOURCE_SHA256.items():
        target = folder / name
        if target.is_file() and sha256_of(target) == expected:
            continue
        url = DOWNLOAD_URL.format(name=name)
        partial = target.with_name(f".{name}.part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
        except (OSError, ValueError) as error:  # URLError is an OSError; a bad address a ValueError
            partial.unlink(missing_ok=True)
            raise SourceError(f"could not download {name} from {url}: {error}") from error
        actual = sha256_of(partial)
        if actual != expected:
            partial.unlink()
            raise SourceError(
                f"{url}: downloaded {name} has SHA-256 {actual[:16]}..., not the published "
                f"{expected[:16]}...; nothing was kept"
            )
        os.replace(partial, target)
    return folder
