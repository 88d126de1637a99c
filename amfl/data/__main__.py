"""Command line for the datasets: ``python -m amfl.data build | export | show | fidelity``
(the Pommier pairs) and ``real-pairs | widths`` (the real ADIR metaphases)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from amfl.data.adir import ADIR_ENV, CASE_SPLIT_FILE, LICENCE_FILE, list_metaphases, write_case_split
from amfl.data.cache import CACHE_ENV
from amfl.data.cleaning import compare_labels
from amfl.data.dataset import build_dataset, load_pairs, load_rebuilt_variants
from amfl.data.export import HubPushError, export_dataset, push_dataset
from amfl.data.fidelity import AUTHORS_MASKS_FILE, compare_with_authors, load_authors_masks
from amfl.data.h5 import H5FormatError
from amfl.data.protocol import split_pairs
from amfl.data.rebuild import RecipeError
from amfl.data.show import save_grid
from amfl.data.sources import DATA_ENV, SourceError, default_source_dir

SPLITS = ("all", "train", "validation", "test")


def _add_source_options(parser: argparse.ArgumentParser, with_h5: bool = True) -> None:
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help=f"folder holding DAPI.tif and Cy3.tif (default: ${DATA_ENV} or ../shared/data)",
    )
    parser.add_argument("--cache", type=Path, default=None, help=f"cache file (default: under ${CACHE_ENV} or ~/.cache/amfl)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if with_h5:
        parser.add_argument("--h5", type=Path, default=None, help="use an original .h5 file instead of the rebuild")
        parser.add_argument("--raw", action="store_true", help="keep the raw labels (no cleaning)")
        parser.add_argument("--seed", type=int, default=123, help="seed of the split shuffle (default: 123, the paper's)")


def _add_adir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adir", type=Path, default=None,
                        help=f"folder of the ADIR metaphases (default: ${ADIR_ENV} or ../shared/data/adir-mfish)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m amfl.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="rebuild the dataset from the source images and cache it")
    _add_source_options(build, with_h5=False)

    export = commands.add_parser("export", help="save train/validation/test as a Hugging Face dataset + card")
    _add_source_options(export)
    export.add_argument("out_dir", type=Path, help="folder to write (save_to_disk format + README.md)")
    export.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="also upload to this Hub dataset repo")
    export.add_argument("--private", action="store_true", help="create the Hub repo as private")

    show = commands.add_parser("show", help="write a PNG grid of samples in the paper's colours")
    _add_source_options(show)
    show.add_argument("out_png", type=Path, help="PNG file to write")
    show.add_argument("--split", choices=SPLITS, default="all", help="which samples to draw from (default: all)")
    show.add_argument("--count", type=int, default=16, help="number of samples (default: 16)")
    show.add_argument("--columns", type=int, default=4, help="samples per row (default: 4)")

    fidelity = commands.add_parser("fidelity", help="compare the rebuild with the AMFL authors' test masks")
    _add_source_options(fidelity, with_h5=False)
    fidelity.add_argument(
        "--masks", type=Path, default=None, help=f"the authors' masks (default: {AUTHORS_MASKS_FILE} in the source folder)"
    )
    real = commands.add_parser("real-pairs", help="cut out the real pairs of the ADIR metaphases, save them + card")
    _add_adir_option(real)
    real.add_argument("--quiet", action="store_true", help="no progress bars")
    real.add_argument("out_dir", type=Path, help="folder to write (save_to_disk format + README.md + LICENSE.txt)")
    real.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="also upload to this Hub dataset repo")
    real.add_argument("--private", action="store_true", help="create the Hub repo as private")
    real.add_argument("--redraw_split", action="store_true",
                      help=f"redraw the recorded case split ({CASE_SPLIT_FILE.name}) before cutting")

    widths = commands.add_parser("widths", help="median chromosome width per ADIR case and in the Pommier pairs")
    _add_adir_option(widths)
    _add_source_options(widths, with_h5=False)

    args = parser.parse_args(argv)
    if getattr(args, "count", 1) < 1 or getattr(args, "columns", 1) < 1:
        parser.error("--count and --columns must be at least 1")
    return args


def run_build(args: argparse.Namespace) -> None:
    result = build_dataset(args.source, args.cache, progress=not args.quiet)
    sizes = split_pairs(result.clean).sizes()
    print(f"built {len(result.clean):,} samples of {result.clean.sample_shape} in {result.seconds:.1f} s")
    print(result.cleaning)
    print(
        f"split (seed 123): train {sizes.train:,}, validation {sizes.validation:,} "
        f"({sizes.validation_scored:,} with overlap, scored), "
        f"test {sizes.test:,} ({sizes.test_scored:,} with overlap, scored)"
    )
    print(f"cache: {result.path}")


def _fidelity_report(source: Path | None, masks: Path | None, cache: Path | None, progress: bool):
    raw, clean = load_rebuilt_variants(source, cache, progress)
    masks = masks or (source or default_source_dir()) / AUTHORS_MASKS_FILE
    authors = load_authors_masks(masks, clean.sample_shape)
    return compare_with_authors(raw, authors), compare_with_authors(clean, authors)


def run_fidelity(args: argparse.Namespace) -> None:
    raw_report, clean_report = _fidelity_report(args.source, args.masks, args.cache, not args.quiet)
    print(f"cleaned labels (the default):\n{clean_report}\n")
    print(f"raw labels (for reference):\n{raw_report}")


def run_export(args: argparse.Namespace) -> int:
    from amfl.data.card import DataOrigin, measure_facts

    progress = not args.quiet
    fidelity = cleaning = None
    if args.h5 is None:
        origin = DataOrigin.rebuild()
        raw, pairs = load_rebuilt_variants(args.source, args.cache, progress)
        if args.raw:
            pairs = raw
        else:
            cleaning = compare_labels(raw.labels, pairs.labels)
            masks = (args.source or default_source_dir()) / AUTHORS_MASKS_FILE
            if masks.is_file():
                fidelity = compare_with_authors(pairs, load_authors_masks(masks, pairs.sample_shape))
    else:
        origin = DataOrigin.h5(args.h5)
        pairs = load_pairs(args.h5, cleaned=not args.raw, progress=progress)
    splits = split_pairs(pairs, args.seed)
    command = "python -m amfl.data " + shlex.join(sys.argv[1:])
    facts = measure_facts(splits, origin, args.seed, cleaning, fidelity, command, labels_cleaned=not args.raw)
    out_dir = export_dataset(splits, facts, args.out_dir)
    print(f"saved {facts.total:,} samples ({facts.split_sizes}) to {out_dir}")
    return _push_if_asked(args, out_dir)


def _push_if_asked(args: argparse.Namespace, out_dir: Path) -> int:
    """Upload an export when ``--push_to_hub`` names a repo; 1 when that fails (the export stays)."""
    if args.push_to_hub:
        try:
            print(f"pushed to {push_dataset(out_dir, args.push_to_hub, args.private)}")
        except HubPushError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


def run_show(args: argparse.Namespace) -> None:
    pairs = load_pairs(args.h5, cleaned=not args.raw, source_dir=args.source, cache_path=args.cache, progress=not args.quiet)
    if args.split != "all":
        pairs = getattr(split_pairs(pairs, args.seed), args.split)
    print(f"wrote {save_grid(pairs, args.out_png, args.count, columns=args.columns)}")


def run_real_pairs(args: argparse.Namespace) -> int:
    from amfl.data.real_export import export_real_pairs
    from amfl.data.real_pairs import balanced_split_seed, extract_real_pairs, overlap_clusters

    metaphases = list_metaphases(args.adir)
    if args.redraw_split:
        clusters = [cluster for m in metaphases for cluster, _ in overlap_clusters(m.read()[1], m)]
        seed = balanced_split_seed(clusters, {m.case for m in metaphases})
        write_case_split(sorted({m.case for m in metaphases}), seed)
        print(f"redrew the case split with seed {seed} into {CASE_SPLIT_FILE}")
    real = extract_real_pairs(metaphases, progress=not args.quiet)
    command = "python -m amfl.data " + shlex.join(sys.argv[1:])
    licence = metaphases[0].label_path.parents[1] / LICENCE_FILE
    out_dir = export_real_pairs(real, args.out_dir, licence, command)
    for split, counts in real.counts().items():
        print(f"{split}: " + ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items()))
    print(f"saved {len(real.pairs)} pairs to {out_dir}")
    return _push_if_asked(args, out_dir)


def run_widths(args: argparse.Namespace) -> None:
    import numpy as np

    from amfl.data.widths import pommier_widths, widths_by_case

    by_case = widths_by_case(list_metaphases(args.adir))
    for case, widths in sorted(by_case.items()):
        print(f"{case}: median width {np.median(widths):.1f} px over {len(widths)} isolated chromosomes")
    every = [width for widths in by_case.values() for width in widths]
    pommier = pommier_widths(load_pairs(source_dir=args.source, cache_path=args.cache, progress=not args.quiet))
    print(f"ADIR, all {len(by_case)} cases: median {np.median(every):.1f} px "
          f"(case medians {min(map(np.median, by_case.values())):.1f}-{max(map(np.median, by_case.values())):.1f})")
    print(f"Pommier pairs: median {np.median(pommier):.1f} px over {len(pommier)} chromosomes of 500 samples")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "build":
            run_build(args)
        elif args.command == "export":
            return run_export(args)
        elif args.command == "show":
            run_show(args)
        elif args.command == "real-pairs":
            return run_real_pairs(args)
        elif args.command == "widths":
            run_widths(args)
        else:
            run_fidelity(args)
    except (SourceError, H5FormatError, RecipeError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
