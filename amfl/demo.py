"""The Gradio Blocks UI of the AMFL Space: upload images, see the segmentation, score it.

All image work happens in :mod:`amfl.inference` (shared with the command line); this module
lays out the page, turns results into what the components show, and turns every problem
with an input into a message on the page, never a traceback. The model is loaded once, in
:func:`main`, and shared by all requests.

Run with ``python app.py`` (``AMFL_MODEL`` picks the model; default: ``space/model/``).
"""

from __future__ import annotations

import html
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from amfl.data.cache import cache_dir
from amfl.data.pairs import CLASS_COLOURS, OverlapPairs
from amfl.data.show import colour_labels
from amfl.data.sources import DATA_ENV, SourceError, default_source_dir, download_sources, sources_available
from amfl.inference import (
    MAX_FILE_BYTES,
    MAX_SIDE,
    MODEL_ENV,
    RESULT_COLUMNS,
    Analysis,
    InputError,
    Segmenter,
    analyse,
    limit_threads,
    match_ground_truths,
    output_stems,
    save_label_png,
    save_results,
    write_csv,
)
from amfl.metrics import METRIC_NAMES, METRIC_UNITS

logger = logging.getLogger(__name__)

#: How many test-split examples the app offers when the source images are reachable.
EXAMPLE_COUNT = 6
#: Bump when the way examples are chosen or written changes, so old caches are not reused.
EXAMPLES_VERSION = 1
#: Requests run side by side: one per core of a small Space, one torch thread each.
CONCURRENCY_LIMIT = 2
#: Download folders (and Gradio's cached copies) older than this are deleted, seconds.
OUTPUT_MAX_AGE_S = 3600
#: Gradio refuses larger uploads outright; smaller files over the app's own 20 MB limit
#: still reach the app, which explains the limit in words.
UPLOAD_LIMIT = "64mb"
#: Small images are shown enlarged (whole-pixel repeats) to at least this many pixels a side.
DISPLAY_MIN_SIDE = 384

_LEGEND = (
    ("chromosome 1 only", 1),
    ("chromosome 2 only", 2),
    ("overlap (both)", 3),
    ("background", 0),
)
_METRIC_LABELS = {
    "acc": "Acc", "dice": "Dice", "iou": "IoU", "recall": "Recall", "precision": "Precision",
    "fnr": "FNR", "fpr": "FPR", "hausdorff": "Hausdorff",
}
_MEASUREMENT_HEADERS = ["Measurement", "Value"]
_METRIC_HEADERS = ["Metric", "Value", "Unit"]


# --- Examples from the test split -----------------------------------------------------------


def examples_folder() -> Path:
    """Where the example files are written: under ``$AMFL_CACHE`` or ``~/.cache/amfl``."""
    return cache_dir() / f"demo-examples-v{EXAMPLES_VERSION}"


def load_examples(
    count: int = EXAMPLE_COUNT, folder: Path | None = None, source_dir: Path | None = None
) -> tuple[list[list[list[str]]], str]:
    """Example (image, ground truth) file pairs from the paper's test split, and a sentence
    saying where they come from or why there are none.

    Written once into ``folder``; later starts read them from there without loading the
    dataset. When the source images cannot be had the app simply has no examples.
    """
    folder = folder or examples_folder()
    pairs = _example_files(folder)
    if len(pairs) < count:
        try:
            from amfl.data.dataset import load_pairs
            from amfl.data.protocol import split_pairs

            test = split_pairs(load_pairs(source_dir=_reachable_sources(source_dir), progress=False)).test_scored
            pairs = write_examples(test, folder, count)
        except SourceError as error:
            logger.warning("no examples: %s", error)
            where = source_dir or default_source_dir()
            return [], (
                f"No examples: the dataset's source images (DAPI.tif, Cy3.tif) are not "
                f"in {where} (set {DATA_ENV} to their folder) and could not be downloaded. "
                f"Detail: {error}"
            )
        except Exception as error:  # examples are a convenience: never stop the app for them
            logger.exception("building the examples failed")
            return [], f"No examples: building them from the dataset failed ({error})."
    examples = [[[str(image)], [str(truth)]] for image, truth in pairs[:count]]
    return examples, f"{len(examples)} examples from the test split, with their ground truth."


def _reachable_sources(source_dir: Path | None) -> Path:
    """The folder with the source images: the given or default one, else a copy downloaded
    from the public origin into the cache (SourceError when that fails, e.g. offline)."""
    folder = source_dir or default_source_dir()
    if sources_available(folder):
        return folder
    logger.info("source images not in %s; downloading them from the public origin", folder)
    return download_sources(cache_dir() / "sources")


def write_examples(test: OverlapPairs, folder: Path, count: int) -> list[tuple[Path, Path]]:
    """Write ``count`` test samples, evenly spread, as 16-bit PNGs (overlap intensities
    exceed 255) beside their ground truth as palette label PNGs."""
    staging = Path(tempfile.mkdtemp(prefix=folder.name, dir=_ensure_parent(folder)))
    positions = np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)
    for number, position in enumerate(positions, start=1):
        image = np.clip(test.images[position], 0, None).astype(np.uint16)
        Image.fromarray(image).save(staging / f"example_{number}.png")
        save_label_png(test.labels[position], staging / f"example_{number}_label.png")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return _example_files(folder)


def _ensure_parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _example_files(folder: Path) -> list[tuple[Path, Path]]:
    """The complete (image, label) pairs in ``folder``, in example order."""
    images = sorted(folder.glob("example_*[0-9].png"), key=lambda path: int(path.stem[8:]))
    pairs = [(image, image.with_name(f"{image.stem}_label.png")) for image in images]
    return [(image, truth) for image, truth in pairs if truth.is_file()]


# --- From results to what the components show -----------------------------------------------


def legend_html() -> str:
    """Colour swatches of the paper's class colours, for beside the overlay."""
    items = []
    for name, label in _LEGEND:
        red, green, blue = CLASS_COLOURS[label]
        items.append(
            f'<span style="display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;'
            f'vertical-align:middle;border:1px solid #888;background:rgb({red},{green},{blue})">'
            f"</span>{label} {name}"
        )
    return '<div class="amfl-legend">' + "".join(items) + "</div>"


def measurements_table(analysis: Analysis) -> pd.DataFrame:
    segmentation = analysis.segmentation
    areas = segmentation.areas()
    height, width = segmentation.shape
    rows = [
        ("Size", f"{width} x {height} px"),
        ("Background", f"{areas['background']} px"),
        ("Chromosome 1 only", f"{areas['chromosome_1_only']} px"),
        ("Chromosome 2 only", f"{areas['chromosome_2_only']} px"),
        ("Overlap", f"{areas['overlap']} px"),
        ("Chromosome A (1 + overlap)", f"{areas['chromosome_a']} px"),
        ("Chromosome B (2 + overlap)", f"{areas['chromosome_b']} px"),
        ("Light background inverted", "yes" if segmentation.light_background else "no"),
        ("Inference time", f"{segmentation.seconds * 1000:.1f} ms"),
    ]
    return pd.DataFrame(rows, columns=_MEASUREMENT_HEADERS)


def metrics_table(analysis: Analysis) -> pd.DataFrame:
    """The eight metrics of the paper for one image; empty without a ground truth."""
    rows = [
        (_METRIC_LABELS[name], f"{analysis.scores[name]:.4f}", METRIC_UNITS[name])
        for name in METRIC_NAMES
    ] if analysis.scores else []
    return pd.DataFrame(rows, columns=_METRIC_HEADERS)


def chromosome_gallery(analysis: Analysis, folder: Path) -> list[tuple[str, str]]:
    first, second = analysis.segmentation.chromosome_masks()
    cut_first, cut_second = analysis.segmentation.cutouts()
    pictures = [
        (first.astype(np.uint8) * 255, "A mask"),
        (cut_first, "A cut-out"),
        (second.astype(np.uint8) * 255, "B mask"),
        (cut_second, "B cut-out"),
    ]
    return [(display_png(picture, folder, f"chromosome_{number}"), caption)
            for number, (picture, caption) in enumerate(pictures)]


def enlarged(pixels: np.ndarray, min_side: int = DISPLAY_MIN_SIDE) -> np.ndarray:
    """Repeat pixels (nearest neighbour) so a small image is shown large enough to see its
    pixels; downloads keep the original size."""
    factor = max(1, min_side // max(pixels.shape[:2]))
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else pixels


def display_png(pixels: np.ndarray, folder: Path, name: str) -> str:
    """``pixels``, enlarged, as a PNG file in ``folder``: what an image component is given.

    Components get files rather than arrays because Gradio stores an array under a name
    derived from its content and writes it in place: two requests showing the same picture
    at once could fetch each other's half-written file. A file is copied into Gradio's
    cache under a temporary name and renamed, which is safe."""
    path = folder / f"{name}.png"
    Image.fromarray(enlarged(pixels)).save(path)
    return str(path)


def image_notes(analysis: Analysis) -> str:
    """What happened to this image on the way in, and why it has no metrics, if it has none."""
    notes = list(analysis.segmentation.notes)
    if analysis.truth_problem:
        notes.append(f"no metrics: {analysis.truth_problem}")
    elif analysis.scores is None:
        notes.append("no ground truth given, so no metrics")
    return "\n".join(f"- {html.escape(note)}" for note in notes)


def result_views(analysis: Analysis | None, opacity: float) -> tuple:
    """Values of the per-image components for ``analysis``, in the order overlay, label map,
    chromosomes, measurements, metrics, difference image, notes (``views`` in build_demo)."""
    if analysis is None:
        return (None, None, [], pd.DataFrame(columns=_MEASUREMENT_HEADERS),
                pd.DataFrame(columns=_METRIC_HEADERS), None, "")
    folder = output_folder()
    difference = analysis.difference()
    return (
        display_png(analysis.segmentation.overlay(opacity), folder, "overlay"),
        display_png(colour_labels(analysis.segmentation.labels), folder, "label_map"),
        chromosome_gallery(analysis, folder),
        measurements_table(analysis),
        metrics_table(analysis),
        None if difference is None else display_png(difference, folder, "difference"),
        image_notes(analysis),
    )


# --- Request handlers -----------------------------------------------------------------------


def _paths(files: str | Sequence[str] | None) -> list[str]:
    if files is None:
        return []
    return [files] if isinstance(files, (str, Path)) else [str(path) for path in files]


def _analyse_safely(segmenter: Segmenter, image: str, truth: Path | None) -> Analysis | str:
    """The analysis, or a message for the user; an unexpected failure is logged in full
    for the operator and summarised for the user, and the batch goes on."""
    try:
        return analyse(segmenter, image, truth)
    except InputError as error:
        return str(error)
    except Exception as error:  # a bug must cost one image, not the page
        logger.exception("segmenting %s failed", image)
        return f"{Path(image).name}: internal error ({type(error).__name__}: {error})"


def output_folder(root: Path | None = None) -> Path:
    """A fresh folder for one request's downloads; folders older than an hour are removed."""
    root = root or Path(tempfile.gettempdir()) / "amfl-demo"
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in root.iterdir():
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def segment_batch(
    segmenter: Segmenter,
    images: str | Sequence[str] | None,
    truths: str | Sequence[str] | None,
    opacity: float,
) -> tuple[list[Analysis], list[str], list[str]]:
    """Analyse the uploaded files: (analyses, downloadable files, problems for the user)."""
    image_paths, truth_paths = _paths(images), _paths(truths)
    if not image_paths:
        return [], [], ["Upload at least one image (PNG, TIFF, JPEG or BMP)."]
    matched, unmatched = match_ground_truths(image_paths, truth_paths)
    problems = [
        f"ground truth {Path(truth).name} matches no image by name (name it like the image, "
        "or e.g. IMAGE_label.png)"
        for truth in unmatched
    ]
    analyses: list[Analysis] = []
    for image in image_paths:
        result = _analyse_safely(segmenter, image, matched.get(image))
        if isinstance(result, str):
            problems.append(result)
        else:
            analyses.append(result)
    files: list[str] = []
    if analyses:
        folder = output_folder()
        stems = output_stems([analysis.name for analysis in analyses])
        for analysis, stem in zip(analyses, stems, strict=True):
            files += [str(path) for path in save_results(analysis, folder, stem, opacity)]
        files.append(str(write_csv([analysis.row() for analysis in analyses], folder / "results.csv")))
    return analyses, files, problems


def status_markdown(analyses: Sequence[Analysis], problems: Sequence[str], total: int) -> str:
    if total == 0:
        lead = "Upload one or more images, then press **Segment**."
    elif analyses:
        lead = f"Segmented {len(analyses)} of {total} images."
    else:
        lead = "No image could be segmented."
    return "\n".join([lead, *(f"- {html.escape(problem)}" for problem in problems)])


class Page:
    """The page's event handlers, bound to one loaded model."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter

    def segment(
        self, images: Sequence[str] | None, truths: Sequence[str] | None, opacity: float
    ) -> tuple:
        """Button handler: run the batch, show the first result, offer the downloads.
        Problems are listed in the status text; a warning pops up once per request."""
        analyses, files, problems = segment_batch(self.segmenter, images, truths, opacity)
        if problems:
            more = f" (and {len(problems) - 1} more, listed on the page)" if len(problems) > 1 else ""
            gr.Warning(html.escape(problems[0] + more))
        names = [analysis.name for analysis in analyses]
        table = pd.DataFrame([analysis.row() for analysis in analyses], columns=list(RESULT_COLUMNS))
        return (
            analyses,
            gr.Dropdown(choices=names, value=names[0] if names else None),
            status_markdown(analyses, problems, len(_paths(images))),
            table,
            files or None,
            *result_views(analyses[0] if analyses else None, opacity),
        )

    def show(self, analyses: list[Analysis], name: str | None, opacity: float) -> tuple:
        """Dropdown handler: the views of another image of the batch, without re-running."""
        return result_views(_find(analyses, name), opacity)

    def recolour(self, analyses: list[Analysis], name: str | None, opacity: float) -> str | None:
        """Slider handler: only the overlay changes with the opacity."""
        analysis = _find(analyses, name)
        if analysis is None:
            return None
        return display_png(analysis.segmentation.overlay(opacity), output_folder(), "overlay")


def _find(analyses: Sequence[Analysis] | None, name: str | None) -> Analysis | None:
    return next((analysis for analysis in analyses or [] if analysis.name == name), None)


# --- Layout ---------------------------------------------------------------------------------


def build_demo(
    segmenter: Segmenter,
    examples: Sequence[Sequence[Sequence[str]]] = (),
    examples_note: str = "",
) -> gr.Blocks:
    """The Blocks app for ``segmenter``; ``examples`` are ([image], [ground truth]) file pairs
    as returned by :func:`load_examples`."""
    page = Page(segmenter)
    # No file_types filter: Gradio would refuse the whole batch for one odd name, while the
    # reader judges each file by its content and explains what it cannot use.
    accepted = "PNG, TIFF 8/16-bit, JPEG, BMP"
    with gr.Blocks(title="AMFL: overlapping chromosome segmentation", analytics_enabled=False,
                   delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown(
            "# AMFL: separating overlapping chromosomes\n"
            "Segments an image of two overlapping chromosomes into background, chromosome 1 "
            "only, chromosome 2 only and their overlap (Mei et al., *Adversarial Multiscale "
            f"Feature Learning for Overlapping Chromosome Segmentation*). Model: "
            f"`{html.escape(segmenter.source)}`. Images up to {MAX_SIDE} x {MAX_SIDE} pixels "
            f"and {MAX_FILE_BYTES // 1_000_000} MB; grey or RGB, 8 or 16 bit; light "
            "backgrounds are inverted so chromosomes are bright, as in the training data."
        )
        analyses = gr.State([], time_to_live=OUTPUT_MAX_AGE_S)  # per browser session
        with gr.Row():
            with gr.Column(scale=1):
                images = gr.File(label="Images", file_count="multiple", elem_id="images")
                truths = gr.File(label="Ground truth (optional)", file_count="multiple",
                                 elem_id="truths")
                gr.Markdown(
                    f"Images: {accepted}, grey or RGB, one or many. "
                    "Ground truth: a label map with values 0-3 or in the paper's colours, "
                    "named like its image (`x.png` or `x_label.png`); one image takes one "
                    "ground truth whatever its name."
                )
                button = gr.Button("Segment", variant="primary", elem_id="segment")
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity",
                                    elem_id="opacity")
                example_area = gr.Column()
            with gr.Column(scale=2):
                status = gr.Markdown(status_markdown([], [], 0), elem_id="status")
                chooser = gr.Dropdown(label="Result shown", choices=[], elem_id="chooser")
                with gr.Row():
                    overlay = gr.Image(label="Overlay", format="png", image_mode="RGB",
                                       interactive=False, elem_id="overlay")
                    label_map = gr.Image(label="Label map", format="png", image_mode="RGB",
                                         interactive=False, elem_id="label-map")
                gr.HTML(legend_html())
                notes = gr.Markdown(elem_id="notes")
                gallery = gr.Gallery(
                    label="Separated chromosomes: A = classes 1 + 3, B = classes 2 + 3",
                    format="png", columns=4, rows=1, height=240, object_fit="contain",
                    elem_id="chromosomes",
                )
                measurements = gr.Dataframe(headers=_MEASUREMENT_HEADERS, label="Measurements",
                                            interactive=False, elem_id="measurements")
                with gr.Row():
                    metrics = gr.Dataframe(
                        headers=_METRIC_HEADERS, interactive=False, elem_id="metrics",
                        label="Metrics against the ground truth (per class, averaged over the "
                        "four classes)",
                    )
                    difference = gr.Image(
                        label="Difference (Fig. 6): wrong pixels in the predicted class's "
                        "colour, white where a chromosome was missed",
                        format="png", image_mode="RGB", interactive=False, elem_id="difference",
                    )
                table = gr.Dataframe(headers=list(RESULT_COLUMNS), label="All images",
                                     interactive=False, elem_id="table")
                downloads = gr.File(label="Downloads: label maps (palette PNG, values 0-3), "
                                    "overlays, results.csv", file_count="multiple",
                                    interactive=False, elem_id="downloads")
        views = [overlay, label_map, gallery, measurements, metrics, difference, notes]
        outputs = [analyses, chooser, status, table, downloads, *views]
        button.click(page.segment, [images, truths, opacity], outputs, api_name="segment",
                     concurrency_limit=CONCURRENCY_LIMIT)
        chooser.input(page.show, [analyses, chooser, opacity], views, api_visibility="private")
        # input, not release: keyboard users move the slider without a pointer release
        opacity.input(page.recolour, [analyses, chooser, opacity], overlay,
                      api_visibility="private")
        with example_area:
            if examples:
                gr.Examples([list(example) for example in examples], [images, truths],
                            label="Examples (test split, with ground truth): pick one, then "
                            "press Segment")
            gr.Markdown(examples_note, elem_id="examples-note")
    return demo


def main() -> None:
    """Load the model once, build the page, serve it. A missing model stops the start with
    a message naming the folder and ``AMFL_MODEL``."""
    logging.basicConfig(level=logging.INFO)
    try:
        limit_threads()
        segmenter = Segmenter.from_pretrained()
    except (FileNotFoundError, ValueError) as error:
        origin = f" ({MODEL_ENV}={os.environ[MODEL_ENV]!r})" if os.environ.get(MODEL_ENV) else ""
        raise SystemExit(f"error: cannot start the AMFL app{origin}: {error}") from None
    examples, note = load_examples()
    serve(build_demo(segmenter, examples, note))


def serve(demo: gr.Blocks, **launch_options) -> tuple:
    """Queue and launch ``demo`` with the app's upload limit; ``launch_options`` go to
    ``Blocks.launch`` (tests pass a host and ``prevent_thread_lock=True``)."""
    return demo.queue().launch(max_file_size=UPLOAD_LIMIT, **launch_options)
