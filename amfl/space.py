"""The Hugging Face Space: its shipped examples, and a deployable folder assembled from this
repository.

    python -m amfl.space examples space/examples      # test-split crops + ground truths
    python -m amfl.space assemble build/space         # app.py, requirements, amfl/, model, examples

The Space starts from files alone: it never rebuilds the dataset or downloads sources.
The examples are regenerated from the source images (``--source DIR``, default
``$AMFL_DATA``, else ``../shared/data``) by the first command, so anyone can remake them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from amfl.data.pairs import OverlapPairs
from amfl.data.sources import PUBLIC_ORIGIN, SourceError
from amfl.pictures import save_label_png

#: How many test-split crops the Space ships.
EXAMPLE_COUNT = 8
#: The attribution that travels with the example images.
EXAMPLES_LICENCE_FILE = "LICENCE.md"
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


def write_examples(test: OverlapPairs, folder: Path, count: int = EXAMPLE_COUNT, seed: int = 123) -> list[Path]:
    """Write ``count`` test samples, evenly spread over the split, as 16-bit PNGs beside
    their palette label PNGs, and the licence text; replaces the folder atomically."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    positions = np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)
    for number, position in enumerate(positions, start=1):
        image = np.clip(test.images[position], 0, None).astype(np.uint16)
        Image.fromarray(image).save(staging / f"example_{number}.png")
        save_label_png(test.labels[position], staging / f"example_{number}_label.png")
    text = _LICENCE_TEXT.format(
        positions=", ".join(map(str, positions.tolist())), seed=seed, origin=PUBLIC_ORIGIN, count=len(positions)
    )
    (staging / EXAMPLES_LICENCE_FILE).write_text(text, encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return sorted(folder.iterdir())


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
    examples = commands.add_parser("examples", help="write the Space's example crops and ground truths")
    examples.add_argument("folder", type=Path, help="where to write them (replaced), e.g. space/examples")
    examples.add_argument("--count", type=int, default=EXAMPLE_COUNT, help="how many test samples")
    examples.add_argument("--source", type=Path, default=None, help="folder with DAPI.tif and Cy3.tif")
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
            written = write_examples(test, args.folder, args.count, args.seed)
            print(f"wrote {len(written)} files to {args.folder}")
        else:
            print(f"assembled the Space in {assemble(args.out)}")
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
