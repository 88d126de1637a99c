"""The real labelled metaphases of the ADIR M-FISH image set (part), as published in the
public repository jeanpat/MFISH: DAPI plane + expert label image per metaphase.

Layout read here (``../shared/data/adir-mfish`` or ``$AMFL_ADIR``): one folder per case,
``<probe><slide>__<karyotype code>``, holding ``<name>D.tif`` (DAPI, 8-bit), ``<name>K.tif``
(labels: 0 background, 1-24 chromosome classes, 255 overlap) and ``Case Info`` (the ISCN
karyotype; its leading number is the chromosome count of a complete metaphase). Every file
is checked against ``SHA256SUMS`` before use, as the Pommier sources are.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from amfl.data.sources import SourceError, default_source_dir, sha256_of

#: Environment variable naming the folder of the ADIR metaphases.
ADIR_ENV = "AMFL_ADIR"
#: Folder name of the set inside the shared data folder.
ADIR_FOLDER = "adir-mfish"
#: Label value the expert gave to pixels where chromosomes overlap.
OVERLAP_VALUE = 255
#: The licence text that must travel with every copy of the images.
LICENCE_FILE = "README.TXT"
CHECKSUM_FILE = "SHA256SUMS"
CASE_INFO_FILE = "Case Info"
PUBLIC_ORIGIN = "https://github.com/jeanpat/MFISH, folder MFISH_TIFF"
_DAPI_SUFFIX, _LABEL_SUFFIX = "D.tif", "K.tif"


@dataclass(frozen=True)
class Metaphase:
    """One labelled metaphase: where its planes are and what its case says."""

    name: str
    case: str
    dapi_path: Path
    label_path: Path
    #: Chromosome count of a complete metaphase of the case (ISCN leading number); None if unknown.
    expected_count: int | None

    @property
    def probe(self) -> str:
        """Probe set: A (ASI), P (PSI/Cytocell) or V (Vysis)."""
        return self.case[0]

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(DAPI, labels), both (H, W) uint8."""
        dapi, labels = (_read_plane(path) for path in (self.dapi_path, self.label_path))
        if dapi.shape != labels.shape:
            raise SourceError(f"{self.name}: DAPI {dapi.shape} and labels {labels.shape} differ in size")
        return dapi, labels


def default_adir_dir() -> Path:
    """``$AMFL_ADIR`` if set, else ``adir-mfish`` in the shared data folder."""
    if os.environ.get(ADIR_ENV):
        return Path(os.environ[ADIR_ENV]).expanduser()
    return default_source_dir() / ADIR_FOLDER


def list_metaphases(folder: Path | str | None = None, verify: bool = True) -> list[Metaphase]:
    """Every labelled metaphase under ``folder``, sorted by name; checked against
    SHA256SUMS first when ``verify``. Unlabelled ones (the EX folders) are not listed."""
    folder = Path(folder) if folder is not None else default_adir_dir()
    if not (folder / CHECKSUM_FILE).is_file():
        raise SourceError(
            f"{folder} holds no {CHECKSUM_FILE}: not the ADIR metaphase folder (set {ADIR_ENV} "
            f"to it; origin: {PUBLIC_ORIGIN})"
        )
    if verify:
        verify_checksums(folder)
    metaphases = []
    for label_path in sorted(folder.glob(f"*/*{_LABEL_SUFFIX}")):
        name = label_path.name[: -len(_LABEL_SUFFIX)]
        dapi_path = label_path.with_name(name + _DAPI_SUFFIX)
        if not dapi_path.is_file():
            raise SourceError(f"{label_path} has no DAPI plane {dapi_path.name} beside it")
        metaphases.append(Metaphase(name, label_path.parent.name, dapi_path, label_path, case_count(label_path.parent)))
    if not metaphases:
        raise SourceError(f"no labelled metaphases (*{_LABEL_SUFFIX}) in {folder}")
    return metaphases


def verify_checksums(folder: Path) -> None:
    """Raise SourceError naming the first listed file that is missing or altered."""
    for line in (folder / CHECKSUM_FILE).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        path = folder / name.lstrip("*")
        if not path.is_file():
            raise SourceError(f"{path} is listed in {CHECKSUM_FILE} but missing")
        if sha256_of(path) != expected:
            raise SourceError(f"{path} does not match its SHA-256 in {CHECKSUM_FILE}: altered or truncated")


def case_count(case_folder: Path) -> int | None:
    """The leading number of the case's ISCN karyotype (``45,XY,-2`` -> 45), if stated."""
    info = case_folder / CASE_INFO_FILE
    if not info.is_file():
        return None
    match = re.match(r"\s*(\d+)\s*,", info.read_text(encoding="utf-8", errors="replace"))
    return int(match.group(1)) if match else None


def _read_plane(path: Path) -> np.ndarray:
    """An 8-bit plane (LZW TIFFs decode with Pillow, which needs no extra codec)."""
    try:
        with Image.open(path) as image:
            plane = np.asarray(image)
    except OSError as error:
        raise SourceError(f"{path}: cannot be read ({error})") from None
    if plane.ndim != 2 or plane.dtype != np.uint8:
        raise SourceError(f"{path}: expected an 8-bit single-plane image, got {plane.dtype} {plane.shape}")
    return plane


#: The case split of the real data, fixed once and recorded in the package; no case is in
#: two splits. Drawn by :func:`draw_case_split` with the seed that
#: ``amfl.data.real_pairs.balanced_split_seed`` chose (``python -m amfl.data real-pairs
#: --redraw_split`` redoes it).
CASE_SPLIT_FILE = Path(__file__).with_name("adir_case_split.json")
CASE_SPLIT_NAMES = ("train", "validation", "test")
#: Share of the cases, and of each kind of pair, that each split aims at.
CASE_SPLIT_SHARES = {"train": 0.5, "validation": 0.25, "test": 0.25}


def draw_case_split(cases: list[str], seed: int) -> dict[str, list[str]]:
    """About half the cases for training, a quarter each for validation and test: a seeded
    permutation of the sorted case names, cut at round(n/2) and round(3n/4)."""
    order = [sorted(cases)[index] for index in np.random.default_rng(seed).permutation(len(cases))]
    half, three_quarters = round(len(order) / 2), round(3 * len(order) / 4)
    parts = (order[:half], order[half:three_quarters], order[three_quarters:])
    return {name: sorted(part) for name, part in zip(CASE_SPLIT_NAMES, parts, strict=True)}


def write_case_split(cases: list[str], seed: int) -> Path:
    """Record the split drawn with ``seed`` (how it was chosen is stated in the file)."""
    import json

    record = {
        "seed": seed,
        "rule": "amfl.data.real_pairs.balanced_split_seed over seeds 0-1999: the draw closest to "
        "half/quarter/quarter of the cases' overlapping and touching pairs",
        "cases": draw_case_split(cases, seed),
    }
    CASE_SPLIT_FILE.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return CASE_SPLIT_FILE


def case_split() -> dict[str, list[str]]:
    """The recorded split: split name -> case folder names."""
    import json

    return json.loads(CASE_SPLIT_FILE.read_text(encoding="utf-8"))["cases"]


def split_of_case(case: str) -> str:
    """Which split a case belongs to; a case unknown to the recorded split is refused, so
    new data cannot slip into training by accident."""
    for name, cases in case_split().items():
        if case in cases:
            return name
    raise KeyError(f"case {case!r} is not in the recorded split {CASE_SPLIT_FILE.name}")
