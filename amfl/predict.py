"""Segment every image in a folder: the command-line twin of the browser demo.

    python -m amfl.predict INPUT_DIR OUTPUT_DIR --model FOLDER_OR_HUB_ID [--truth DIR]
    amfl-predict INPUT_DIR OUTPUT_DIR --model space/model       # the repository's bundled model

For each image ``x.png`` it writes ``x_labels.png`` (palette PNG whose pixel values are the
classes 0-3, shown in the paper's colours), ``x_overlay.png`` and, with a ground truth,
``x_difference.png``; one ``results.csv`` holds the areas, the inference time and, with a
ground truth, the eight metrics of each image. A file that cannot be read is skipped with a
message; the others are still processed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from amfl.outputs import TRUTH_SUFFIXES, match_ground_truths, output_stems, result_row, save_results, write_csv
from amfl.reading import InputError
from amfl.segmentation import (
    DEFAULT_THREADS,
    MODEL_ENV,
    Analysis,
    Segmenter,
    analyse,
    limit_threads,
    resolve_model_source,
)

CSV_NAME = "results.csv"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m amfl.predict",
        description="Segment overlapping chromosome images: label maps, overlays and a CSV.",
    )
    parser.add_argument("input_dir", type=Path, help="folder of images (PNG, TIFF, JPEG, BMP)")
    parser.add_argument("output_dir", type=Path, help="folder for the results (created if needed)")
    parser.add_argument(
        "--model",
        default=None,
        help=f"model folder or Hub id (default: ${MODEL_ENV}); the repository bundles one in space/model",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of ground-truth label maps, matched by name (x.png, or x"
        + ", x".join(TRUTH_SUFFIXES)
        + " with any image suffix); adds the eight metrics and difference images",
    )
    parser.add_argument(
        "--opacity", type=float, default=0.5, help="opacity of the class colours in the overlays, 0..1"
    )
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="CPU threads for the network"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail before loading the model, with the usage line and what to change."""
    if not args.input_dir.is_dir():
        parser.error(f"input folder {args.input_dir} does not exist or is not a folder")
    if args.truth is not None and not args.truth.is_dir():
        parser.error(f"ground-truth folder {args.truth} does not exist or is not a folder")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"output {args.output_dir} exists and is not a folder")
    if args.output_dir.resolve() == args.input_dir.resolve():
        parser.error("write the results to another folder than the input images")
    if not 0 <= args.opacity <= 1:
        parser.error(f"--opacity must lie in 0..1, got {args.opacity}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")


def list_files(folder: Path) -> list[Path]:
    """The visible files of ``folder``, sorted; what is not an image is skipped later, with a
    message, since the reader judges files by content rather than by name."""
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    images = list_files(args.input_dir)
    if not images:
        print(f"error: no files in {args.input_dir}", file=sys.stderr)
        return 1
    truths, unmatched = match_ground_truths(images, list_files(args.truth) if args.truth else [])
    # Images and their ground truths may share one folder: a truth is not segmented itself.
    images = [image for image in images if image not in set(truths.values())]
    unmatched = [truth for truth in unmatched if truth not in images]
    if args.truth and not args.quiet:
        print(f"{len(truths)} of {len(images)} images have a ground truth in {args.truth}"
              + (f"; {len(unmatched)} truth files match no image" if unmatched else ""))
    limit_threads(args.threads)
    try:
        segmenter = Segmenter.from_pretrained(resolve_model_source(args.model))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], 0
    progress = tqdm(images, unit="image", disable=args.quiet, file=sys.stderr)
    for image, stem in zip(progress, output_stems([path.name for path in images]), strict=True):
        try:
            analysis = analyse(segmenter, image, truths.get(str(image)))
        except InputError as error:
            skipped += 1
            progress.write(f"skipped {error}", file=sys.stderr)
            continue
        _report_truth_problem(analysis, progress)
        save_results(analysis, args.output_dir, stem, args.opacity)
        rows.append(result_row(analysis))
    csv_path = write_csv(rows, args.output_dir / CSV_NAME)
    if not args.quiet:
        print(f"segmented {len(rows)} of {len(images)} files into {args.output_dir} "
              f"({skipped} skipped); per-image results in {csv_path}")
    return 0 if rows else 1


def _report_truth_problem(analysis: Analysis, progress: tqdm) -> None:
    if analysis.truth_problem:
        progress.write(f"{analysis.name}: no metrics, {analysis.truth_problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
