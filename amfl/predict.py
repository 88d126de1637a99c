"""Segment every image in a folder, or with ``--metaphase`` analyse whole metaphases: the
command-line twin of the browser demo.

    python -m amfl.predict INPUT_DIR OUTPUT_DIR --model FOLDER_OR_HUB_ID [--truth DIR]
    python -m amfl.predict --metaphase INPUT_DIR OUTPUT_DIR --model space/model
    amfl-predict INPUT_DIR OUTPUT_DIR --model space/model       # the repository's bundled model
    amfl-predict INPUT_DIR OUTPUT_DIR --model space/model --runtime onnxruntime   # faster on a CPU

Crop mode, each image a crop of one overlapping pair: ``x_labels.png`` (palette PNG whose
pixel values are the classes 0-3, in the paper's colours), ``x_overlay.png`` and, with a
ground truth, ``x_difference.png``; ``results.csv`` holds the areas, the inference time and
the eight metrics. Metaphase mode, each image a whole metaphase (:mod:`amfl.metaphase`): the
instance maps, overlay, gallery and CSVs of :mod:`amfl.metaphase_outputs`, and a summary line
printed; ``results.csv`` holds the counts.

Both modes share the rest. ``results.csv`` lists every file of the folder with its ``status``
(``ok``, ``failed: <reason>``, or ``skipped: hidden file ...``) and the ``notes`` the app
shows (alpha channel ignored, image inverted, unusable ground truth). A file that cannot be
read, analysed (a metaphase without chromosomes: empty, tiny) or written costs only itself:
one line on stderr names it and the error, its row says why, its outputs are removed (an
older run's included) and the next file is processed. Files whose names start with a dot
(``.DS_Store``, macOS ``._x.png``) are not analysed but listed.

Every output is written to a temporary name and renamed into place, so an interrupted run
or a full disk never leaves a partial file under its final name. A stale ``results.csv`` and
a killed run's temporaries (``.amfl-partial-*``) are removed at the start; each row goes to
``results.partial.csv`` as soon as its file is done, and ``results.csv`` is written at the
end. Exit status: 0 all done, 1 nothing written, 2 bad arguments, 3 some files failed, 130
interrupted (``EPILOG``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from amfl.metaphase import NO_CHROMOSOMES, analyse_metaphase
from amfl.metaphase_candidates import checked_grey
from amfl.metaphase_outputs import (
    METAPHASE_RESULT_COLUMNS, METAPHASE_SUFFIXES, metaphase_row, save_metaphase_outputs, summary_line,
)
from amfl.models.precision import PRECISIONS, SETTINGS, choose_precision
from amfl.onnx_runtime import RUNTIME_SETTINGS, RUNTIMES
from amfl.outputs import (
    OUTPUT_SUFFIXES, RESULT_COLUMNS, TRUTH_SUFFIXES, match_ground_truths, output_paths, output_stems,
    result_row, save_results,
)
from amfl.reading import InputError, read_grey
from amfl.results_table import CSV_NAME, PARTIAL_CSV_NAME, ResultsTable, describe_os_error
from amfl.segmentation import DEFAULT_THREADS, MODEL_ENV, Segmenter, analyse, limit_threads, resolve_model_source

#: Columns of results.csv in crop mode: the app's table with each file's status and notes...
CSV_COLUMNS = ("file", "status", *RESULT_COLUMNS[1:], "notes")
#: ... and in metaphase mode.
METAPHASE_CSV_COLUMNS = ("file", "status", *METAPHASE_RESULT_COLUMNS[1:], "notes")
OK = "ok"
#: Between two notes of the notes column (a note itself may hold "; ").
NOTE_SEPARATOR = " | "
HIDDEN_STATUS = "skipped: hidden file (name starts with a dot)"
DEFAULT_OPACITY = 0.5
EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EPILOG = f"""exit status:
  {EXIT_OK}    every file was segmented (or analysed) and its outputs written
  {EXIT_FATAL}    nothing was written: no files, the model cannot be loaded, the output folder
       refuses writes, no image succeeded, or {CSV_NAME} cannot be written
  {EXIT_USAGE}    bad arguments
  {EXIT_FAILED}    some files failed (cannot be read, analysed or written; a metaphase without
       chromosomes); the others are written and the status column of {CSV_NAME} says which
  {EXIT_INTERRUPTED}  interrupted; the rows of the files done are in {PARTIAL_CSV_NAME}

outputs per image x.png: crop mode x_labels.png, x_overlay.png (x_difference.png with --truth);
--metaphase x_instances.png and x_instances_overlap.png (16-bit chromosome ids, the second
where two overlap), x_overlay.png, x_gallery.png, x_chromosomes.csv, x_set_aside.csv.
Files whose names start with a dot are not analysed; {CSV_NAME} lists them as skipped.
Outputs are written to temporary names and renamed into place: no partial files."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m amfl.predict",
        description="Segment overlapping chromosome images (label maps, overlays and a CSV), or with "
        "--metaphase count and separate the chromosomes of whole metaphases.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input_dir", type=Path, help="folder of images (PNG, TIFF, JPEG, BMP)")
    parser.add_argument("output_dir", type=Path, help="folder for the results (created if needed)")
    parser.add_argument("--model", default=None,
                        help=f"model folder or Hub id (default: ${MODEL_ENV}); the repository bundles one in space/model")
    parser.add_argument(
        "--metaphase", action="store_true",
        help="each image is a whole metaphase (bright chromosomes on dark): count, separate and draw its "
        "chromosomes instead of segmenting one crop",
    )
    parser.add_argument(
        "--truth", type=Path, default=None, metavar="DIR",
        help="crop mode only: folder of ground-truth label maps, matched by name (x.png, or x"
        + ", x".join(TRUTH_SUFFIXES) + " with any image suffix); adds the eight metrics and difference images",
    )
    parser.add_argument(
        "--opacity", type=float, default=None,
        help=f"crop mode only: opacity of the class colours in the overlays, 0..1 (default {DEFAULT_OPACITY})",
    )
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="CPU threads for the network")
    parser.add_argument("--precision", choices=SETTINGS, default=PRECISIONS[0],
                        help="number format of the network (default float32; auto: bfloat16 where the CPU has it natively)")
    parser.add_argument(
        "--runtime", choices=RUNTIME_SETTINGS, default=RUNTIMES[0],
        help="what runs the network on each crop or metaphase: torch (default, as amfl.evaluate and the model cards), "
        "onnxruntime (float32 only; faster on a CPU, with the same labels on the benchmark sets: results/runtime) "
        "or auto (onnxruntime where it can, as the app); tiles of large images always run in torch",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no notes and no summaries")
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail before loading the model, with the usage line and what to change."""
    if not args.input_dir.is_dir():
        parser.error(f"input folder {args.input_dir} does not exist or is not a folder")
    if args.metaphase and args.truth is not None:
        parser.error("--truth is not supported with --metaphase: metaphases are scored by python -m amfl.metaphase_eval")
    if args.metaphase and args.opacity is not None:
        parser.error("--opacity is not supported with --metaphase: its overlay has fixed colours")
    if args.truth is not None and not args.truth.is_dir():
        parser.error(f"ground-truth folder {args.truth} does not exist or is not a folder")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"output {args.output_dir} exists and is not a folder")
    if args.output_dir.resolve() == args.input_dir.resolve():
        parser.error("write the results to another folder than the input images")
    if args.opacity is None:
        args.opacity = DEFAULT_OPACITY
    if not 0 <= args.opacity <= 1:
        parser.error(f"--opacity must lie in 0..1, got {args.opacity}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")


def list_files(folder: Path) -> list[Path]:
    """The files of ``folder``, sorted, hidden ones (names starting with a dot) included;
    what is not an image is reported later, since the reader judges files by content."""
    return sorted(path for path in folder.iterdir() if path.is_file())


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a file name) written as escapes, so a
    report stays one line of stderr per file."""
    return "".join(character if character.isprintable() else ascii(character)[1:-1] for character in text)


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


@dataclass(frozen=True)
class Analysed:
    """One image analysed, not yet written. ``notes`` are said on stderr unless --quiet,
    ``warnings`` always (both go in the notes column); ``save(folder, stem)`` writes it."""

    row: dict[str, object]  # its cells of results.csv, but status and notes
    notes: tuple[str, ...]
    save: Callable[[Path, str], list[Path]]
    warnings: tuple[str, ...] = ()
    summary: str | None = None  # printed unless --quiet


@dataclass(frozen=True)
class Mode:
    """What a run does to each image (``analyse`` raises what fails it; ``suffixes``: of every
    output ``save`` may write); the loop, failures, results.csv and exit status are shared."""

    analyse: Callable[[Path], Analysed]
    columns: tuple[str, ...]
    suffixes: tuple[str, ...]
    verb: str


def crop_mode(segmenter: Segmenter, truths: dict[str, Path], opacity: float) -> Mode:
    """Each image a crop of one overlapping pair: labels, overlay, metrics with a ground truth."""

    def analysed(image: Path) -> Analysed:
        analysis = analyse(segmenter, image, truths.get(str(image)))
        return Analysed(
            result_row(analysis), analysis.segmentation.notes,
            lambda folder, stem: save_results(analysis, folder, stem, opacity),
            warnings=(f"no metrics: {analysis.truth_problem}",) if analysis.truth_problem else (),
        )

    return Mode(analysed, CSV_COLUMNS, OUTPUT_SUFFIXES, "segmented")


def metaphase_mode(segmenter: Segmenter) -> Mode:
    """Each image a whole metaphase, its chromosomes counted and drawn; none (empty, tiny): failed."""

    def analysed(image: Path) -> Analysed:
        grey, notes = read_grey(image)
        try:
            checked_grey(grey)
        except ValueError as error:
            raise InputError(f"{image.name}: {error}") from None
        result = analyse_metaphase(grey, segmenter)
        if not result.count:
            why = next((note for note in result.notes if note.startswith(NO_CHROMOSOMES)), NO_CHROMOSOMES)
            raise InputError(f"{image.name}: {why}")
        return Analysed(
            metaphase_row(image.name, result), (*notes, *result.notes),
            lambda folder, stem: save_metaphase_outputs(grey, result, folder, stem),
            summary=summary_line(image.name, result),
        )

    return Mode(analysed, METAPHASE_CSV_COLUMNS, METAPHASE_SUFFIXES, "analysed")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    files = list_files(args.input_dir)
    hidden = [path for path in files if is_hidden(path)]
    images = [path for path in files if not is_hidden(path)]
    if not images:
        only = " (only hidden files, whose names start with a dot)" if hidden else ""
        print(f"error: no files in {args.input_dir}{only}", file=sys.stderr)
        return EXIT_FATAL
    truth_files = [path for path in list_files(args.truth) if not is_hidden(path)] if args.truth else []
    truths, unmatched = match_ground_truths(images, truth_files)
    # Images and their ground truths may share one folder: a truth is not segmented itself.
    truth_paths = set(truths.values())
    images = [image for image in images if image not in truth_paths]
    unmatched = [truth for truth in unmatched if truth not in images]
    if args.truth and not args.quiet:
        print(f"{len(truths)} of {len(images)} images have a ground truth in {args.truth}"
              + (f"; {len(unmatched)} truth files match no image" if unmatched else ""))
    limit_threads(args.threads)
    try:
        segmenter = Segmenter.from_pretrained(
            resolve_model_source(args.model), choose_precision(args.precision), args.runtime
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FATAL
    mode = metaphase_mode(segmenter) if args.metaphase else crop_mode(segmenter, truths, args.opacity)
    try:
        table = ResultsTable(args.output_dir, mode.columns)
    except OSError as error:
        print(f"error: cannot write into {args.output_dir}: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_FATAL
    for path in hidden:
        table.add({"file": path.name, "status": HIDDEN_STATUS})
    failed = 0
    progress = tqdm(images, unit="image", disable=args.quiet, file=sys.stderr)

    def report(line: str, file=sys.stderr) -> None:
        progress.write(one_line(line), file=file)

    try:
        for image, stem in zip(progress, output_stems([path.name for path in images], mode.suffixes), strict=True):
            row = _process(mode, image, output_paths(args.output_dir, stem, mode.suffixes), stem, args, report)
            failed += row["status"] != OK
            warning = table.add(row)
            if warning:
                report(warning)
    except KeyboardInterrupt:
        progress.close()
        table.close()
        kept = f"; the rows of the files done are in {table.partial}" if table.partial_complete else ""
        print(f"interrupted after {len(table.rows) - len(hidden)} of {len(images)} files: "
              f"{CSV_NAME} not written{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()
    try:
        csv_path = table.finish()
    except OSError as error:
        kept = f"; the rows are in {table.partial}" if table.partial_complete and table.partial.exists() else ""
        print(f"error: cannot write {error.filename or table.path}: {describe_os_error(error)}{kept}", file=sys.stderr)
        return EXIT_FATAL
    done = len(images) - failed
    if not args.quiet:
        skipped = f"; {len(hidden)} hidden file{'s' * (len(hidden) != 1)} skipped" if hidden else ""
        print(f"{mode.verb} {done} of {len(images)} files into {args.output_dir} "
              f"({failed} failed{skipped}); per-image results in {csv_path}")
    return EXIT_FATAL if not done else EXIT_FAILED if failed else EXIT_OK


def _process(mode: Mode, image: Path, outputs: list[Path], stem: str, args: argparse.Namespace,
             report: Callable[..., None]) -> dict[str, object]:
    """Analyse and write one image; its row of results.csv. A failure is reported and
    returned as the row's status, with the image's ``outputs`` removed (none look current)."""
    try:
        analysed = mode.analyse(image)
    except Exception as error:  # one bad file must not end the batch
        return _failed(image, outputs, _read_problem(error, image.name), report)
    notes = [*analysed.notes, *analysed.warnings]
    for note in analysed.warnings if args.quiet else (*analysed.warnings, *analysed.notes):
        report(f"{image.name}: {note}")
    try:
        written = analysed.save(args.output_dir, stem)
    except Exception as error:
        return _failed(image, outputs, _write_problem(error), report, notes)
    except BaseException:
        _remove(outputs)
        raise
    _remove(outputs, keep=written)  # e.g. an older run's difference image
    if analysed.summary and not args.quiet:
        report(analysed.summary, sys.stdout)
    return {**analysed.row, "status": OK, "notes": NOTE_SEPARATOR.join(notes)}


def _failed(image: Path, outputs: list[Path], reason: str, report: Callable[..., None],
            notes: Sequence[str] = ()) -> dict[str, object]:
    report(f"failed {image.name}: {reason}")
    _remove(outputs)
    return {"file": image.name, "status": f"failed: {reason}", "notes": NOTE_SEPARATOR.join(notes)}


def _remove(paths: Sequence[Path], keep: Sequence[Path] = ()) -> None:
    for path in paths:
        if path not in keep:
            with contextlib.suppress(OSError):  # best effort: the row's status says what happened
                path.unlink(missing_ok=True)


def _read_problem(error: Exception, name: str) -> str:
    if isinstance(error, InputError):
        message = str(error)
        return message[len(name) + 2 :] if message.startswith(f"{name}: ") else message
    if isinstance(error, OSError):
        return f"cannot read: {describe_os_error(error)}"
    return f"{type(error).__name__}: {error}"


def _write_problem(error: Exception) -> str:
    if isinstance(error, OSError):
        target = Path(error.filename).name if error.filename else "the outputs"
        return f"cannot write {target}: {describe_os_error(error)}"
    return f"cannot write the outputs: {type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
