"""The Hugging Face Space: its shipped examples, and a deployable folder assembled from this
repository.

    python -m amfl.space examples space/examples      # test-split crops + whole metaphases
    python -m amfl.space assemble build/space         # app.py, requirements, amfl/, model, examples

The Space starts from files alone: it never rebuilds the dataset or downloads sources.
The examples are regenerated from the source images (``--source DIR``, default
``$AMFL_DATA``, else ``../shared/data``) by the first command, so anyone can remake them:
eight crops of the test split with their ground truths, and in ``metaphases/`` whole
metaphases from sources checked against their published SHA-256: the metaphase of the
Pommier ``DAPI.tif`` (the dataset recipe's 850 x 850 crop as a 16-bit PNG: the source file
itself stays out of git) and three test-split ADIR metaphases copied byte for byte
(``--adir DIR``, default ``$AMFL_ADIR``, else ``adir-mfish`` in the source folder), with the
ADIR licence ``README.TXT`` beside them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from amfl.data import adir as adir_set
from amfl.data.pairs import OverlapPairs
from amfl.data.rebuild import CROP_COLUMNS, CROP_ROWS
from amfl.data.sources import PUBLIC_ORIGIN, SourceError, default_source_dir, sha256_of, verify_source_file
from amfl.pictures import save_label_png

#: How many test-split crops the Space ships.
EXAMPLE_COUNT = 8
#: The attribution that travels with the example images.
EXAMPLES_LICENCE_FILE = "LICENCE.md"
#: The whole-metaphase examples' subfolder: the Pommier DAPI plane, and the DAPI planes of
#: three ADIR metaphases of the test split (case folder / file, as in the ADIR set).
METAPHASE_EXAMPLES = "metaphases"
POMMIER_EXAMPLE = "pommier_DAPI.png"
ADIR_EXAMPLES = ("A01__XY/A0103XYD.tif", "P08__28/P080628D.tif", "V29__62/V290162D.tif")
#: Example crops in an examples folder are ``example_<n>.png`` beside ``example_<n>_label.png``.
EXAMPLE_PATTERN = "example_*[0-9].png"
#: The whole-metaphase examples: image files of these types in ``METAPHASE_EXAMPLES``.
METAPHASE_EXAMPLE_TYPES = (".tif", ".tiff", ".png")
#: How the ADIR licence text begins (it is not in the set's SHA256SUMS).
ADIR_LICENCE_START = "Copyright (c) 2000 Advanced Digital Imaging Research"
#: The repository checkout this module belongs to (``assemble`` copies from it).
REPOSITORY = Path(__file__).resolve().parents[1]
#: What a deployable Space holds, relative to the repository (same layout in the Space, so
#: app.py finds ``space/model`` and ``space/examples`` beside itself).
SPACE_FILES = ("app.py", "requirements.txt", "amfl", "space/model", "space/examples")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")

_LICENCE_TEXT = """# Example images: origin and attribution

The `example_<n>.png` images (16-bit grey; overlap pixels hold the sum of both chromosomes'
intensities) and their `example_<n>_label.png` ground truths (palette PNG, values 0
background, 1 and 2 the chromosomes, 3 overlap) are samples {positions} of the test split
(seed {seed}, the AMFL paper's protocol) of the overlapping-chromosomes dataset, rebuilt by
`amfl.data` from J.-P. Pommier's two public source images `DAPI.tif` and `Cy3.tif` of one
human lymphocyte metaphase.

Source: {origin}.
Attribution: J.-P. Pommier, "Overlapping chromosomes" (2016). Cite it when you use these
images. Regenerate them with:

    python -m amfl.space examples space/examples --count {count}
"""


_METAPHASE_LICENCE = """# Whole-metaphase examples: origin and licence

Each file is made from its published source, checked against its SHA-256.

- `{pommier}`: the metaphase of J.-P. Pommier's `DAPI.tif` (one human lymphocyte, 46
  chromosomes; 12-bit values in 16 bits), cut to rows 50-899 and columns 300-1149 as the
  dataset recipe does, saved as a 16-bit PNG: the source image the crop examples one folder
  up are cut from. Source: {pommier_origin}. Attribution: J.-P. Pommier, "Overlapping
  chromosomes" (2016). Cite it when you use this image.
- {adir_names}: the DAPI counterstain planes (8-bit TIFF) of three
  metaphases of the test split (`amfl.data.adir.split_of_case`) of the PSI/ADIR M-FISH image
  set #1 (Advanced Digital Imaging Research, 2000), as published in {adir_origin}.
  Copyright (c) 2000 Advanced Digital Imaging Research. Licence: `{adir_licence}` beside this
  file, copied verbatim; it must travel with every copy of these images.

| File | ADIR case | Karyotype (the case's `Case Info`) |
|---|---|---|
{adir_rows}

The karyotype's leading number is the chromosome count of a complete metaphase of the case.
Regenerate these files with:

    python -m amfl.space examples space/examples [--source DIR] [--adir DIR]
"""


def example_files(folder: Path | None) -> list[list[list[str]]]:
    """The (image, ground truth) example pairs shipped in ``folder``, in number order, as
    gr.Examples rows; none when the folder is absent."""
    if folder is None or not Path(folder).is_dir():
        return []
    images = sorted(Path(folder).glob(EXAMPLE_PATTERN), key=lambda path: int(path.stem.rsplit("_", 1)[1]))
    pairs = [(image, image.with_name(f"{image.stem}_label.png")) for image in images]
    return [[[str(image)], [str(truth)]] for image, truth in pairs if truth.is_file()]


def metaphase_examples(folder: Path | None) -> list[Path]:
    """The whole-metaphase example images shipped in ``folder`` (in ``METAPHASE_EXAMPLES``), by
    name; none when absent."""
    folder = None if folder is None else Path(folder) / METAPHASE_EXAMPLES
    if folder is None or not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in METAPHASE_EXAMPLE_TYPES)


def write_metaphase_examples(folder: Path, source: Path, adir: Path) -> list[Path]:
    """Write ``POMMIER_EXAMPLE`` (the recipe's crop of ``DAPI.tif`` in ``source``) and copy
    ``ADIR_EXAMPLES`` from ``adir`` into the new ``folder``, each source checked against its
    published SHA-256, with the ADIR licence text and ``LICENCE.md``; a missing or altered
    file, or a case outside the test split, is a SourceError naming it."""
    folder, adir = Path(folder), Path(adir)
    folder.mkdir(parents=True)
    dapi = tifffile.imread(verify_source_file(Path(source), "DAPI.tif"))
    Image.fromarray(dapi[CROP_ROWS, CROP_COLUMNS]).save(folder / POMMIER_EXAMPLE)
    listed = adir / adir_set.CHECKSUM_FILE
    if not listed.is_file():
        raise SourceError(f"{adir} holds no {adir_set.CHECKSUM_FILE}: not the ADIR metaphase folder "
                          f"(pass --adir or set {adir_set.ADIR_ENV}; origin: {adir_set.PUBLIC_ORIGIN})")
    sums = {name.lstrip("*").removeprefix("./"): digest for digest, name in
            (line.split(maxsplit=1) for line in listed.read_text(encoding="utf-8").splitlines() if line.strip())}
    lines = []
    for relative in ADIR_EXAMPLES:
        case, name = relative.split("/")
        path = adir / relative
        if adir_set.split_of_case(case) != "test":
            raise SourceError(f"{relative}: case {case} is not in the test split; examples are test metaphases")
        if not path.is_file() or sha256_of(path) != sums.get(relative):
            raise SourceError(f"{path}: missing, or not the published file (its SHA-256 in {listed} differs)")
        shutil.copyfile(path, folder / name)
        info = path.parent / adir_set.CASE_INFO_FILE
        karyotype = info.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].strip() \
            if info.is_file() else "not stated"
        lines.append(f"| `{name}` | `{case}` | `{karyotype}` |")
    licence = adir / adir_set.LICENCE_FILE
    if not licence.is_file() or not licence.read_text(encoding="utf-8", errors="replace").startswith(
            ADIR_LICENCE_START):
        raise SourceError(f"{licence}: missing, or not the ADIR licence text (it must travel with the images)")
    shutil.copyfile(licence, folder / adir_set.LICENCE_FILE)
    text = _METAPHASE_LICENCE.format(
        pommier=POMMIER_EXAMPLE, pommier_origin=PUBLIC_ORIGIN, adir_rows="\n".join(lines),
        adir_names=", ".join(f"`{Path(relative).name}`" for relative in ADIR_EXAMPLES),
        adir_origin=adir_set.PUBLIC_ORIGIN, adir_licence=adir_set.LICENCE_FILE,
    )
    (folder / EXAMPLES_LICENCE_FILE).write_text(text, encoding="utf-8")
    return sorted(folder.iterdir())


def write_examples(test: OverlapPairs, folder: Path, count: int = EXAMPLE_COUNT, seed: int = 123,
                   metaphases: tuple[Path, Path] | None = None) -> list[Path]:
    """Write ``count`` test samples, evenly spread over the split, as 16-bit PNGs beside
    their palette label PNGs, and the licence text; with ``metaphases`` (the Pommier source
    folder, the ADIR folder) also the whole-metaphase examples in ``METAPHASE_EXAMPLES``
    (:func:`write_metaphase_examples`). Replaces the folder atomically."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _write_crops(test, staging, count, seed)
        if metaphases is not None:
            write_metaphase_examples(staging / METAPHASE_EXAMPLES, *metaphases)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return sorted(folder.iterdir())


def _write_crops(test: OverlapPairs, staging: Path, count: int, seed: int) -> None:
    positions = np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)
    for number, position in enumerate(positions, start=1):
        image = np.clip(test.images[position], 0, None).astype(np.uint16)
        Image.fromarray(image).save(staging / f"example_{number}.png")
        save_label_png(test.labels[position], staging / f"example_{number}_label.png")
    text = _LICENCE_TEXT.format(
        positions=", ".join(map(str, positions.tolist())), seed=seed, origin=PUBLIC_ORIGIN, count=len(positions)
    )
    (staging / EXAMPLES_LICENCE_FILE).write_text(text, encoding="utf-8")


def assemble(out: Path, repository: Path = REPOSITORY) -> Path:
    """Copy what the Space needs into ``out`` (replaced) and put the Space's README, with its
    YAML header, at the top; refuse when a part is missing, naming it."""
    missing = [name for name in (*SPACE_FILES, "space/README.md") if not (repository / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"cannot assemble the Space: {', '.join(missing)} missing in {repository}"
            + ("; make the examples with `python -m amfl.space examples space/examples`"
               if "space/examples" in missing else "")
        )
    out = Path(out)
    inside = [name for name in SPACE_FILES if out.resolve().is_relative_to((repository / name).resolve())]
    if out.resolve() == repository.resolve() or inside:
        raise ValueError(f"assemble into a folder of its own, not {out} (it would copy itself)")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in SPACE_FILES:
        source, target = repository / name, out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=_IGNORED)
        else:
            shutil.copy2(source, target)
    shutil.copy2(repository / "space" / "README.md", out / "README.md")
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m amfl.space", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    examples = commands.add_parser("examples", help="write the Space's example crops, ground truths and metaphases")
    examples.add_argument("folder", type=Path, help="where to write them (replaced), e.g. space/examples")
    examples.add_argument("--count", type=int, default=EXAMPLE_COUNT, help="how many test samples")
    examples.add_argument("--source", type=Path, default=None, help="folder with DAPI.tif and Cy3.tif")
    examples.add_argument("--adir", type=Path, default=None,
                          help=f"ADIR metaphase folder (default ${adir_set.ADIR_ENV}, else "
                          f"{adir_set.ADIR_FOLDER} in the shared data folder)")
    examples.add_argument("--seed", type=int, default=123, help="split seed (the paper's 123)")
    build = commands.add_parser("assemble", help="assemble a deployable Space folder")
    build.add_argument("out", type=Path, help="the folder to create (replaced)")
    args = parser.parse_args(argv)
    if args.command == "examples" and args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "examples":
            from amfl.data.dataset import load_pairs
            from amfl.data.protocol import split_pairs

            test = split_pairs(load_pairs(source_dir=args.source), seed=args.seed).test_scored
            source = args.source if args.source is not None else default_source_dir()
            adir = args.adir if args.adir is not None else adir_set.default_adir_dir()
            written = write_examples(test, args.folder, args.count, args.seed, metaphases=(source, adir))
            print(f"wrote {len(written)} files to {args.folder}")
        else:
            print(f"assembled the Space in {assemble(args.out)}")
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
