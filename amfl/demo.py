"""The Gradio Blocks UI of the AMFL Space: upload images, see the segmentation, score it.

All image work happens in :mod:`amfl.segmentation` (shared with the command line) and what
the components show in :mod:`amfl.demo_views`; this module lays out the page, runs the
handlers, and turns every problem with an input into a message on the page, never a
traceback. The model is loaded once, in :func:`main`, and shared by all requests.

Memory per session is bounded. Every API call is a session of its own, and Gradio keeps a
session's ``gr.State`` for up to an hour (an hour after a browser tab closes, whatever the
state's ``time_to_live``), so the state holds only a token. What a session needs to redraw
its results (another image chosen, the opacity moved) is a :class:`amfl.demo_views.Kept`
per image: the uint8 display image, label map and ground truth, 2 to 3 bytes a pixel
(3 MB for a 1024 x 1024 image with ground truth; the float32 grey image and the analysis
are not kept), held zlib-compressed. These live in one
:class:`amfl.demo_views.KeptResults` per app: a batch keeps its first results up to
``KEPT_SESSION_BYTES`` (48 MiB, at least one 4096 x 4096 image with ground truth), all
sessions together at most ``KEPT_TOTAL_BYTES`` (192 MiB, the least recently used batch
dropped first), and a batch is dropped ``KEPT_MAX_AGE_S`` (15 minutes) after it was made.
A result no longer kept says so; the downloads stay for ``OUTPUT_MAX_AGE_S``.

Whole metaphases get a view of their own (:mod:`amfl.demo_metaphase`, which also says when
a batch goes there); the session's token then names a batch of that module's store, which
keeps file paths and text only.

Large images (over 1024 x 1024 pixels) go one at a time, two more waiting, the next refused
(:mod:`amfl.demo_gate`), so at least five of the ``CONCURRENCY_LIMIT`` workers stay free.

Numbers from the API are checked before any work (a ``gr.Error`` naming the problem); the
model is named by folder name or Hub id, never by its server path.

Run with ``python app.py`` (``AMFL_MODEL`` picks the model; default: the app's bundled one;
``AMFL_PRECISION``: ``auto``, the default, computes in bfloat16 where the CPU has it natively,
``float32`` or ``bfloat16`` force one, :mod:`amfl.models.precision`; ``AMFL_RUNTIME``:
``auto``, the default, runs whole images in ONNX Runtime where it is installed and the
network computes in float32, ``torch`` or ``onnxruntime`` force one, :mod:`amfl.onnx_runtime`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import pandas as pd

from amfl.demo_gate import BUSY_MESSAGE, LARGE_IMAGES, LaneFull, LargeImageGate, any_large
from amfl.demo_metaphase import (
    AUTO, METAPHASE_MIN_SIDE, MODES, MetaphasePage, download_stems, metaphase_example_files, metaphase_layout,
    upload_paths,
)
from amfl.demo_views import (
    KEPT_MAX_AGE_S,
    KEPT_SESSION_BYTES,
    MEASUREMENT_HEADERS,
    METRIC_HEADERS,
    OUTPUT_MAX_AGE_S,
    BatchViews,
    Kept,
    KeptResults,
    ResultViews,
    display_png,
    internal_error,
    legend_html,
    output_folder,
    page_text,
    popup_text,
    result_views,
    updates,
)
from amfl.memory import limit_malloc_arenas
from amfl.outputs import RESULT_COLUMNS, match_ground_truths, result_row, save_results, write_csv
from amfl.reading import MAX_FILE_BYTES, MAX_SIDE, InputError
from amfl.segmentation import (
    MODEL_ENV, PRECISIONS, Analysis, Segmenter, analyse, limit_threads, resolve_model_source, resolve_precision,
    resolve_runtime,
)
from amfl.space import example_files

logger = logging.getLogger(__name__)

#: Requests run side by side, one torch thread each; large ones hold at most
#: 1 + ``amfl.demo_gate.LARGE_WAITING`` of these workers (see the module docstring).
CONCURRENCY_LIMIT = 8
#: Gradio refuses larger uploads outright; smaller files over the app's own 20 MB limit
#: still reach the app, which explains the limit in words.
UPLOAD_LIMIT = "64mb"
#: Sessions Gradio keeps (least recently used dropped; default 10,000). Each API call is one,
#: of about 0.17 MB (64 calls of bench_load.py --users 1 added 11 MB): 10,000 would be 1.7 GB.
SESSION_CAPACITY = 500
#: Told when a result is no longer kept on the server (see the module docstring).
GONE = (f"This result is no longer kept on the server (results are kept for "
        f"{KEPT_MAX_AGE_S // 60} minutes, and only the latest ones): press Segment again, or "
        "use the downloads.")


# --- Request handlers -----------------------------------------------------------------------


def check_opacity(opacity: object) -> float:
    """``opacity`` as a float in 0..1, else a gr.Error saying what it must be (the slider
    cannot send anything else; an API client can, and must hear it before any work)."""
    if isinstance(opacity, bool) or not isinstance(opacity, (int, float)) or not math.isfinite(opacity) \
            or not 0 <= opacity <= 1:
        raise gr.Error(f"The overlay opacity must be a number from 0 to 1 (the slider's range); "
                       f"got {opacity!r}.", print_exception=False)
    return float(opacity)


def _analyse_safely(segmenter: Segmenter, image: str, truth: Path | None) -> Analysis | str:
    """The analysis, or a message for the user; an unexpected failure is logged in full
    for the operator and summarised for the user (without the upload folder's path), and
    the batch goes on."""
    try:
        return analyse(segmenter, image, truth)
    except InputError as error:
        return str(error)
    except Exception as error:  # a bug must cost one image, not the page
        logger.exception("segmenting %s failed", image)
        return internal_error(Path(image).name, error, [Path(image).parent])


def segment_batch(
    segmenter: Segmenter,
    images: str | Sequence[str] | None,
    truths: str | Sequence[str] | None,
    opacity: float,
) -> tuple[list[Analysis], list[str], list[str]]:
    """Analyse the uploaded files: (analyses, downloadable files, problems for the user).
    ``opacity`` is checked first (:func:`check_opacity`)."""
    opacity = check_opacity(opacity)
    image_paths, truth_paths = upload_paths(images), upload_paths(truths)
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
        stems = download_stems([analysis.name for analysis in analyses])
        for analysis, stem in zip(analyses, stems, strict=True):
            files += [str(path) for path in save_results(analysis, folder, stem, opacity)]
        files.append(str(write_csv([result_row(analysis) for analysis in analyses], folder / "results.csv")))
    return analyses, files, problems


def status_markdown(
    analyses: Sequence[Analysis], problems: Sequence[str], total: int, shown: int | None = None
) -> str:
    """The status text; ``shown``: how many of the results can be shown again, if not all."""
    if total == 0:
        lead = "Upload one or more images, then press **Segment**."
    elif analyses:
        lead = f"Segmented {len(analyses)} of {total} images."
    else:
        lead = "No image could be segmented."
    lines = [lead, *(f"- {page_text(problem)}" for problem in problems)]
    if shown is not None and shown < len(analyses):
        lines.append(f"- only the first {shown} results can be shown here (the server keeps "
                     f"{KEPT_SESSION_BYTES // 2**20} MB of results a visitor); the table and the "
                     "downloads have them all")
    return "\n".join(lines)


class Page:
    """The page's event handlers, bound to one loaded model, the store of the results
    sessions can redraw (default: a new :class:`KeptResults` with the app's bounds) and the
    lane of large images (default: the process's ``LARGE_IMAGES``)."""

    def __init__(self, segmenter: Segmenter, kept: KeptResults | None = None,
                 gate: LargeImageGate = LARGE_IMAGES) -> None:
        self.segmenter, self.gate = segmenter, gate
        self.kept = kept if kept is not None else KeptResults()

    def segment(
        self, images: Sequence[str] | None, truths: Sequence[str] | None, opacity: float,
        previous: str | None = None,
    ) -> BatchViews:
        """Button handler: run the batch, show the first result, offer the downloads; the
        session's ``previous`` batch is dropped from the store. Problems are listed in the
        status text; a warning pops up once per request. A bad opacity raises gr.Error, and
        so does a large image when the lane of large images is full."""
        check_opacity(opacity)
        large = any_large(upload_paths(images), self.segmenter.is_large)
        try:
            return self.gate.run(large, self._segment, images, truths, opacity, previous)
        except LaneFull:
            raise gr.Error(BUSY_MESSAGE, print_exception=False) from None

    def _segment(self, images, truths, opacity, previous) -> BatchViews:
        analyses, files, problems = segment_batch(self.segmenter, images, truths, opacity)
        if problems:
            gr.Warning(popup_text(problems))
        token, kept = self.kept.keep([Kept.of(analysis) for analysis in analyses], replacing=previous)
        names = [result.name for result in kept]
        return BatchViews(
            kept=token,
            chooser=gr.Dropdown(choices=names, value=names[0] if names else None),
            status=status_markdown(analyses, problems, len(upload_paths(images)), len(kept)),
            table=pd.DataFrame([result_row(analysis) for analysis in analyses], columns=list(RESULT_COLUMNS)),
            downloads=files or None,
            result=result_views(kept[0] if kept else None, opacity),
        )

    def show(self, token: str | None, name: str | None, opacity: float) -> ResultViews:
        """Dropdown handler: the views of another image of the batch, without re-running."""
        opacity = check_opacity(opacity)
        return result_views(self.kept.find(token, name), opacity, notes=f"- {GONE}" if name else "")

    def recolour(self, token: str | None, name: str | None, opacity: float) -> str | None:
        """Slider handler: only the overlay changes with the opacity."""
        opacity = check_opacity(opacity)
        result = self.kept.find(token, name)
        if result is None:
            if name:
                gr.Warning(GONE)
            return None
        return display_png(result.overlay(opacity), output_folder(), "overlay")


# --- Layout ---------------------------------------------------------------------------------


def build_demo(segmenter: Segmenter, examples: Sequence[Sequence[Sequence[str]]] = (),
               model_name: str | None = None, kept: KeptResults | None = None,
               metaphase_examples: Sequence[Sequence[object]] = ()) -> gr.Blocks:
    """The Blocks app for ``segmenter``; ``examples`` are ([image], [ground truth]) file pairs
    as returned by :func:`example_files`, ``metaphase_examples`` rows of
    :func:`metaphase_example_files`; ``model_name`` is what the page calls the model
    (default: the folder's name or the Hub id, never a server path); ``kept`` holds the
    results sessions can redraw (default: a new store with the app's bounds)."""
    page = Page(segmenter, kept)
    metaphase = MetaphasePage(segmenter, page.gate, crop_kept=page.kept)
    name = (model_name or display_name(segmenter.source)).replace("`", "'")
    # the card's scores are float32 ones: say when the network computes otherwise
    computing = "" if segmenter.precision == PRECISIONS[0] else f" (computing in {segmenter.precision})"
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
            f"`{name}`{computing}. Images up to {MAX_SIDE} x {MAX_SIDE} pixels "
            f"and {MAX_FILE_BYTES // 1_000_000} MB; grey or RGB, 8 or 16 bit; light "
            "backgrounds are inverted so chromosomes are bright, as in the training data. "
            "**Whole metaphases** are counted and their chromosomes separated instead: choose "
            f"*Whole metaphase*, or leave *Auto* for images of {METAPHASE_MIN_SIDE} pixels a side or more."
        )
        # per session: a token of page.kept or of metaphase.kept (see the module docstring)
        kept_token = gr.State("", time_to_live=KEPT_MAX_AGE_S, delete_callback=metaphase.discard)
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
                with gr.Row():  # Auto: see amfl.demo_metaphase
                    mode = gr.Radio(list(MODES), value=AUTO, label="Images are", elem_id="mode")
                    button = gr.Button("Segment", variant="primary", elem_id="segment")
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity",
                                    elem_id="opacity")
                example_area = gr.Column()
            with gr.Column(scale=2):
                status = gr.Markdown(status_markdown([], [], 0), elem_id="status")
                with gr.Column(elem_id="crop-view") as crop_view:
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
                shown = metaphase_layout(metaphase, kept_token)
        views = {"overlay": overlay, "label_map": label_map, "chromosomes": gallery,
                 "measurements": measurements, "metrics": metrics, "difference": difference,
                 "notes": notes}
        batch = {"kept": kept_token, "chooser": chooser, "status": status, "table": table,
                 "downloads": downloads, **views}

        def on_segment(files, truth_files, alpha, previous):
            return updates(page.segment(files, truth_files, alpha, previous), batch)

        def on_analyse(files, truth_files, alpha, mode, previous):  # the API names the choice "mode"
            def crop():
                return page.segment(files, truth_files, alpha, previous)
            return shown.updates(metaphase.route(files, truth_files, mode, previous, crop), batch, crop_view)

        def on_choose(token, name, alpha):
            return updates(page.show(token, name, alpha), views)

        # one concurrency group: the page's Segment (/analyse) and the crop API (/segment,
        # every image a pair crop as before; no page control triggers it) share the workers
        workers = {"concurrency_limit": CONCURRENCY_LIMIT, "concurrency_id": "segment"}
        button.click(on_analyse, [images, truths, opacity, mode, kept_token],
                     [*batch.values(), *shown.outputs, crop_view], api_name="analyse", **workers)
        gr.Button(visible=False).click(on_segment, [images, truths, opacity, kept_token], list(batch.values()),
                                       api_name="segment", **workers)
        chooser.input(on_choose, [kept_token, chooser, opacity], list(views.values()),
                      api_visibility="private")
        # input, not release: keyboard users move the slider without a pointer release;
        # always_last: the value reached while a redraw runs is drawn next, not dropped
        opacity.input(page.recolour, [kept_token, chooser, opacity], overlay,
                      api_visibility="private", trigger_mode="always_last")
        with example_area:
            if examples:
                gr.Examples([[*example, AUTO] for example in examples], [images, truths, mode],
                            label="Examples (test split, with ground truth): pick one, then "
                            "press Segment")
            if metaphase_examples:
                gr.Examples([list(example) for example in metaphase_examples], [images, truths, mode],
                            label="Examples of whole metaphases (DAPI): pick one, then press Segment")
    return demo


def display_name(source: str) -> str:
    """How the page names a model: a Hub id as it is, a local folder by its last two parts
    as given (a link is not followed to its target), so the server's file system layout is
    not shown to every visitor."""
    path = Path(source)
    if not path.is_dir():
        return source
    parts = Path(os.path.abspath(path)).parts[1:]  # without the root
    return "/".join(parts[-2:]) or "model"


def main(default_model: Path | None = None, examples_dir: Path | None = None) -> None:
    """Load the model once (``$AMFL_MODEL``, else ``default_model``), build the page with the
    examples shipped in ``examples_dir``, serve it. A missing model stops the start with a
    message naming the folder and ``AMFL_MODEL``."""
    logging.basicConfig(level=logging.INFO)
    limit_malloc_arenas()  # before the server's threads exist: see amfl.memory
    try:
        limit_threads()
        segmenter = Segmenter.from_pretrained(
            resolve_model_source(None, default_model), resolve_precision(), resolve_runtime())
    except (FileNotFoundError, ValueError) as error:
        origin = f" ({MODEL_ENV}={os.environ[MODEL_ENV]!r})" if os.environ.get(MODEL_ENV) else ""
        raise SystemExit(f"error: cannot start the AMFL app{origin}: {error}") from None
    serve(build_demo(segmenter, example_files(examples_dir),
                     metaphase_examples=metaphase_example_files(examples_dir)))


def serve(demo: gr.Blocks, **launch_options) -> tuple:
    """Queue and launch ``demo`` with the app's upload limit and session capacity;
    ``launch_options`` go to ``Blocks.launch`` (tests: a host, ``prevent_thread_lock``)."""
    return demo.queue().launch(max_file_size=UPLOAD_LIMIT, state_session_capacity=SESSION_CAPACITY, **launch_options)
