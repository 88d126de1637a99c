"""The Gradio Blocks UI of the AMFL Space: upload images, see the segmentation, score it.

All image work happens in :mod:`amfl.segmentation` (shared with the command line) and what
the components show in :mod:`amfl.demo_views`; this module lays out the page, runs the
handlers, and turns every problem with an input into a message on the page, never a
traceback. The model is loaded once, in :func:`main`, and shared by all requests.

Run with ``python app.py`` (``AMFL_MODEL`` picks the model; default: the app's bundled one).
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import pandas as pd

from amfl.demo_views import (
    MEASUREMENT_HEADERS,
    METRIC_HEADERS,
    OUTPUT_MAX_AGE_S,
    BatchViews,
    ResultViews,
    display_png,
    legend_html,
    output_folder,
    result_views,
    updates,
)
from amfl.outputs import RESULT_COLUMNS, match_ground_truths, output_stems, result_row, save_results, write_csv
from amfl.reading import MAX_FILE_BYTES, MAX_SIDE, InputError
from amfl.segmentation import MODEL_ENV, Analysis, Segmenter, analyse, limit_threads, resolve_model_source

logger = logging.getLogger(__name__)

#: Requests run side by side: one per core of a small Space, one torch thread each.
CONCURRENCY_LIMIT = 2
#: Gradio refuses larger uploads outright; smaller files over the app's own 20 MB limit
#: still reach the app, which explains the limit in words.
UPLOAD_LIMIT = "64mb"
#: Example images in an examples folder are ``example_<n>.png`` beside ``example_<n>_label.png``
#: (written by ``python -m amfl.space examples``).
EXAMPLE_PATTERN = "example_*[0-9].png"


def example_files(folder: Path | None) -> list[list[list[str]]]:
    """The (image, ground truth) example pairs shipped in ``folder``, in number order, as
    gr.Examples rows; none when the folder is absent."""
    if folder is None or not Path(folder).is_dir():
        return []
    images = sorted(Path(folder).glob(EXAMPLE_PATTERN), key=lambda path: int(path.stem.rsplit("_", 1)[1]))
    pairs = [(image, image.with_name(f"{image.stem}_label.png")) for image in images]
    return [[[str(image)], [str(truth)]] for image, truth in pairs if truth.is_file()]


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
        files.append(str(write_csv([result_row(analysis) for analysis in analyses], folder / "results.csv")))
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
    ) -> BatchViews:
        """Button handler: run the batch, show the first result, offer the downloads.
        Problems are listed in the status text; a warning pops up once per request."""
        analyses, files, problems = segment_batch(self.segmenter, images, truths, opacity)
        if problems:
            more = f" (and {len(problems) - 1} more, listed on the page)" if len(problems) > 1 else ""
            gr.Warning(html.escape(problems[0] + more))
        names = [analysis.name for analysis in analyses]
        return BatchViews(
            analyses=analyses,
            chooser=gr.Dropdown(choices=names, value=names[0] if names else None),
            status=status_markdown(analyses, problems, len(_paths(images))),
            table=pd.DataFrame([result_row(analysis) for analysis in analyses], columns=list(RESULT_COLUMNS)),
            downloads=files or None,
            result=result_views(analyses[0] if analyses else None, opacity),
        )

    def show(self, analyses: list[Analysis], name: str | None, opacity: float) -> ResultViews:
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


def build_demo(segmenter: Segmenter, examples: Sequence[Sequence[Sequence[str]]] = (), model_name: str | None = None) -> gr.Blocks:
    """The Blocks app for ``segmenter``; ``examples`` are ([image], [ground truth]) file pairs
    as returned by :func:`example_files`; ``model_name`` is what the page calls the model
    (default: the folder's name or the Hub id, never a server path)."""
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
            f"`{html.escape(model_name or display_name(segmenter.source))}`. Images up to {MAX_SIDE} x {MAX_SIDE} pixels "
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
                measurements = gr.Dataframe(headers=MEASUREMENT_HEADERS, label="Measurements",
                                            interactive=False, elem_id="measurements")
                with gr.Row():
                    metrics = gr.Dataframe(
                        headers=METRIC_HEADERS, interactive=False, elem_id="metrics",
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
        views = {"overlay": overlay, "label_map": label_map, "chromosomes": gallery,
                 "measurements": measurements, "metrics": metrics, "difference": difference,
                 "notes": notes}
        batch = {"analyses": analyses, "chooser": chooser, "status": status, "table": table,
                 "downloads": downloads, **views}

        def on_segment(files, truth_files, alpha):
            return updates(page.segment(files, truth_files, alpha), batch)

        def on_choose(results, name, alpha):
            return updates(page.show(results, name, alpha), views)

        button.click(on_segment, [images, truths, opacity], list(batch.values()), api_name="segment",
                     concurrency_limit=CONCURRENCY_LIMIT)
        chooser.input(on_choose, [analyses, chooser, opacity], list(views.values()),
                      api_visibility="private")
        # input, not release: keyboard users move the slider without a pointer release
        opacity.input(page.recolour, [analyses, chooser, opacity], overlay,
                      api_visibility="private")
        with example_area:
            if examples:
                gr.Examples([list(example) for example in examples], [images, truths],
                            label="Examples (test split, with ground truth): pick one, then "
                            "press Segment")
    return demo


def display_name(source: str) -> str:
    """How the page names a model: a Hub id as it is, a local folder by its last parts, so
    the server's file system layout is not shown to every visitor."""
    path = Path(source)
    if not path.is_dir():
        return source
    return "/".join(path.resolve().parts[-2:])


def main(default_model: Path | None = None, examples_dir: Path | None = None) -> None:
    """Load the model once (``$AMFL_MODEL``, else ``default_model``), build the page with the
    examples shipped in ``examples_dir``, serve it. A missing model stops the start with a
    message naming the folder and ``AMFL_MODEL``."""
    logging.basicConfig(level=logging.INFO)
    try:
        limit_threads()
        segmenter = Segmenter.from_pretrained(resolve_model_source(None, default_model))
    except (FileNotFoundError, ValueError) as error:
        origin = f" ({MODEL_ENV}={os.environ[MODEL_ENV]!r})" if os.environ.get(MODEL_ENV) else ""
        raise SystemExit(f"error: cannot start the AMFL app{origin}: {error}") from None
    serve(build_demo(segmenter, example_files(examples_dir)))


def serve(demo: gr.Blocks, **launch_options) -> tuple:
    """Queue and launch ``demo`` with the app's upload limit; ``launch_options`` go to
    ``Blocks.launch`` (tests pass a host and ``prevent_thread_lock=True``)."""
    return demo.queue().launch(max_file_size=UPLOAD_LIMIT, **launch_options)
