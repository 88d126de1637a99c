"""The app's whole-metaphase view (:mod:`amfl.metaphase`), which view a batch gets, and what
both views share: the uploads' paths and the names of the downloads.

Which view (:meth:`MetaphasePage.route`): the page's mode choice, ``Auto`` by default. Auto
takes a batch for whole metaphases when every image whose size can be read is at least
``METAPHASE_MIN_SIDE`` pixels on both sides (three 128-pixel training crops; a crop of one
pair is 94 x 93, an ADIR metaphase 517 x 645 and more), else for pair crops; sizes come from
the file headers. A crop batch that holds a metaphase-sized image says so in its status and
in a pop-up: the crop model's labels of a whole metaphase mean little.

The metaphase view: for each image the files of
:func:`amfl.metaphase_outputs.save_metaphase_outputs` go to a fresh download folder, with a
``results.csv`` of the batch (``METAPHASE_RESULT_COLUMNS``, one row per image). The page
shows the numbered overlay and the gallery from those files and the tables from their CSVs.
What the server keeps to show another image of the batch is only those file paths and the
summary text, never pixels (:class:`KeptMetaphases`), under the same session token as a crop
batch (the session's one ``gr.State``; a new batch of either kind drops the session's
previous one). A file that cannot be read or holds no chromosomes costs only itself (a line
in the status). The batch runs in the lane of large images (:mod:`amfl.demo_gate`) like a
crop batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from amfl.demo_gate import BUSY_MESSAGE, LARGE_IMAGES, LaneFull, LargeImageGate, any_large
from amfl.demo_store import TokenBatches
from amfl.demo_views import (
    OUTPUT_MAX_AGE_S, BatchViews, KeptResults, internal_error, output_folder, page_text, popup_text, updates,
)
from amfl.metaphase import NO_CHROMOSOMES, MetaphaseResult, analyse_metaphase
from amfl.metaphase_outputs import (
    CHROMOSOME_COLUMNS, METAPHASE_RESULT_COLUMNS, METAPHASE_SUFFIXES, SET_ASIDE_COLUMNS, metaphase_row,
    save_metaphase_outputs, summary_line,
)
from amfl.outputs import OUTPUT_SUFFIXES, output_stems, write_csv
from amfl.preprocessing import TRAINING_SIZE
from amfl.reading import InputError, declared_shape, read_grey
from amfl.segmentation import Segmenter
from amfl.space import metaphase_examples

logger = logging.getLogger(__name__)

#: The page's choice of view; Auto decides by the images' sizes.
MODES = ("Auto", "Pair crop", "Whole metaphase")
AUTO, PAIR_CROP, WHOLE_METAPHASE = MODES
#: Auto takes an image for a whole metaphase when both its sides are at least this many
#: pixels: three training crops (128 px) a side.
METAPHASE_MIN_SIDE = 3 * TRAINING_SIZE
#: Gradio cuts the name of every file it serves to this many bytes, extension kept
#: (``gradio_client.utils.strip_invalid_filename_characters``): a longer download name
#: would lose its ``_labels``/``_overlay`` suffix, and two downloads would share a name.
GRADIO_NAME_BYTES = 200


def stem_bytes(suffixes: Sequence[str]) -> int:
    """Longest download stem such that the longest of ``suffixes`` still fits in
    ``GRADIO_NAME_BYTES``."""
    return GRADIO_NAME_BYTES - max(len(suffix.encode()) for suffix in suffixes)


#: Longest download stem of the crop view's outputs.
DOWNLOAD_STEM_BYTES = stem_bytes(OUTPUT_SUFFIXES)
#: How far the counts can be trusted: ``results/metaphase/README.md``, ADIR test split (38).
RELIABILITY = (
    "Counts are not yet reliable: on the 38 test metaphases of the ADIR set the count was exact "
    "in 21 % of them, off by 2.95 chromosomes on average. Check the numbered overlay: an id "
    "with `*` (white outline) is flagged for review, a grey outline was set aside, not counted."
)
#: Told when a metaphase's files are gone (swept after ``OUTPUT_MAX_AGE_S``) or unknown.
GONE = (f"This result is no longer kept on the server (files are kept for {OUTPUT_MAX_AGE_S // 60} "
        "minutes): press Segment again.")
#: Images (records of a few hundred bytes) that all sessions' metaphase batches keep together,
#: the least recently used batch dropped first; a batch is dropped when its files are swept.
KEPT_RECORDS = 10_000
#: The files of one image that its views are drawn from, by suffix (the server keeps their paths).
SHOWN_FILES = {"overlay": "_overlay.png", "gallery": "_gallery.png", "chromosomes": "_chromosomes.csv",
               "set_aside": "_set_aside.csv"}


def upload_paths(files: str | Sequence[str] | None) -> list[str]:
    """A File component's value as a list of paths."""
    return [] if files is None else [files] if isinstance(files, (str, Path)) else [str(path) for path in files]


def download_stems(names: Sequence[str], suffixes: Sequence[str] = OUTPUT_SUFFIXES) -> list[str]:
    """:func:`amfl.outputs.output_stems`, each short enough that Gradio serves the downloads
    (the stem and each of ``suffixes``) under their own, distinct names: a longer stem is cut
    and ends in ``~`` and 8 hex digits of a hash of the whole stem."""
    limit = stem_bytes(suffixes)
    stems = []
    for stem in output_stems(names, suffixes):
        if len(stem.encode()) > limit:
            mark = "~" + hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            stem = stem.encode("utf-8", "surrogateescape")[: limit - len(mark)].decode("utf-8", "ignore") + mark
        stems.append(stem)
    return stems


def metaphase_example_files(folder: Path | None) -> list[list[object]]:
    """The whole-metaphase examples shipped in ``folder`` (:func:`amfl.space.metaphase_examples`)
    as gr.Examples rows for (images, ground truths, mode): no ground truth, Whole metaphase."""
    return [[[str(image)], None, WHOLE_METAPHASE] for image in metaphase_examples(folder)]


def checked_mode(mode: object) -> str:
    """``mode`` if it is one of ``MODES``, else a gr.Error saying what it must be."""
    if not isinstance(mode, str) or mode not in MODES:
        raise gr.Error(f"The mode must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}.",
                       print_exception=False)
    return mode


def metaphase_sized(shape: tuple[int, int] | None) -> bool:
    return shape is not None and min(shape) >= METAPHASE_MIN_SIDE


def wants_metaphase(paths: Sequence[str], mode: str) -> bool:
    """Whether ``mode`` sends the images at ``paths`` to the metaphase view (see the module
    docstring); files whose size cannot be read do not count (the reader explains them)."""
    if checked_mode(mode) != AUTO:
        return mode == WHOLE_METAPHASE
    shapes = [shape for shape in map(declared_shape, paths) if shape is not None]
    return bool(shapes) and all(map(metaphase_sized, shapes))


def crop_note(paths: Sequence[str]) -> str:
    """For a crop batch: which images look like whole metaphases, and what to choose instead."""
    found = [(Path(path).name, shape) for path in paths if metaphase_sized(shape := declared_shape(path))]
    if not found:
        return ""
    names = ", ".join(f"{name} ({width} x {height} px)" for name, (height, width) in found)
    one = len(found) == 1
    return (f"{names} {'looks' if one else 'look'} like {'a whole metaphase' if one else 'whole metaphases'}, "
            "not a crop of one overlapping pair: the crop model's labels mean little there. Choose "
            "Whole metaphase beside the Segment button to count and separate the chromosomes.")


@dataclass(frozen=True)
class Shown:
    """What the metaphase view shows of one image, by component name (:class:`MetaphaseView`)."""

    summary: str
    overlay: str | None
    gallery: str | None
    chromosomes: pd.DataFrame
    set_aside: pd.DataFrame


class KeptMetaphases(TokenBatches[dict[str, str]]):
    """What sessions' metaphase batches keep to show an image again
    (:class:`amfl.demo_store.TokenBatches`): per image its name, stem, summary and the paths
    of ``SHOWN_FILES`` (strings only). At most ``max_records`` images in all (the newest
    batch always kept), each batch dropped ``max_age_s`` after it was kept."""

    def __init__(self, max_records: int = KEPT_RECORDS, max_age_s: float = OUTPUT_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_records, max_age_s, clock)

    def keep(self, records: Sequence[Mapping[str, str]]) -> str:
        """The token of the kept ``records`` ("" for none)."""
        return self.store([dict(record) for record in records])

    def find(self, token: str | None) -> list[dict[str, str]]:
        return self.batch(token)


@dataclass(frozen=True)
class MetaphaseBatch:
    """What Segment fills in the metaphase view; ``kept``: the session's token of the batch
    (:class:`KeptMetaphases`)."""

    kept: str
    chooser: Any
    status: str
    images: pd.DataFrame
    downloads: list[str] | None
    shown: Shown


def shown_of(record: Mapping[str, str] | None, gone: str = "") -> Shown:
    """The views of one image from its files; ``gone`` (and empty views) when they are not there."""
    if record is None or not all(Path(record[name]).is_file() for name in SHOWN_FILES):
        return Shown(gone, None, None, pd.DataFrame(columns=list(CHROMOSOME_COLUMNS)),
                     pd.DataFrame(columns=list(SET_ASIDE_COLUMNS)))
    tables = [pd.read_csv(record[name], keep_default_na=False) for name in ("chromosomes", "set_aside")]
    return Shown(record["summary"], record["overlay"], record["gallery"], *tables)


def summary_text(name: str, result: MetaphaseResult, notes: Sequence[str]) -> str:
    count = f"{result.count} chromosome{'' if result.count == 1 else 's'}"
    lines = [f"### {count} counted in {page_text(name)}", "", page_text(summary_line(name, result))]
    extra = [*notes, *result.notes]
    return "\n".join(lines + ([""] + [f"- {page_text(note)}" for note in extra] if extra else []))


class MetaphasePage:
    """The metaphase view's handlers, bound to one loaded model, the lane of large images, the
    store of what metaphase batches keep (default: a new :class:`KeptMetaphases`) and that of
    the crop batches (``crop_kept``: the session's previous crop batch is dropped with it)."""

    def __init__(self, segmenter: Segmenter, gate: LargeImageGate = LARGE_IMAGES,
                 kept: KeptMetaphases | None = None, crop_kept: KeptResults | None = None) -> None:
        self.segmenter, self.gate, self.crop_kept = segmenter, gate, crop_kept
        self.kept = kept if kept is not None else KeptMetaphases()

    def discard(self, token: str | None) -> None:
        """Drop the session's batch, of either kind (the session state's delete callback)."""
        self.kept.discard(token)
        if self.crop_kept is not None:
            self.crop_kept.discard(token)

    def route(self, images: str | Sequence[str] | None, truths: str | Sequence[str] | None, mode: object,
              previous: str | None, crop: Callable[[], BatchViews]) -> MetaphaseBatch | BatchViews:
        """Segment's handler: the metaphase batch when ``mode`` says so (:func:`wants_metaphase`),
        else ``crop()``'s views (which drop the session's ``previous`` crop batch), their status
        noting any metaphase-sized image."""
        paths = upload_paths(images)
        if wants_metaphase(paths, mode):
            batch = self.segment(paths, truths, auto=mode == AUTO)
            self.discard(previous)
            return batch
        self.kept.discard(previous)
        views, note = crop(), crop_note(paths)
        if note:
            gr.Warning(page_text(note))
            views = dataclasses.replace(views, status=f"{views.status}\n- {page_text(note)}")
        return views

    def segment(self, images: str | Sequence[str] | None, truths: str | Sequence[str] | None = None,
                auto: bool = False) -> MetaphaseBatch:
        """Analyse the batch as whole metaphases, in the lane of large images; a gr.Error
        when that lane is full."""
        paths = upload_paths(images)
        try:
            return self.gate.run(any_large(paths, self.segmenter.is_large), self._segment, paths,
                                 upload_paths(truths), auto)
        except LaneFull:
            raise gr.Error(BUSY_MESSAGE, print_exception=False) from None

    def _segment(self, paths: list[str], truths: list[str], auto: bool) -> MetaphaseBatch:
        problems = [] if paths else ["Upload at least one image (PNG, TIFF, JPEG or BMP)."]
        if truths:
            problems.append(f"ground truths are not used for whole metaphases ({len(truths)} given; "
                            "python -m amfl.metaphase_eval scores the ADIR metaphases)")
        records, rows, files = [], [], []
        folder = output_folder() if paths else None
        stems = download_stems([Path(path).name for path in paths], METAPHASE_SUFFIXES)
        for path, stem in zip(paths, stems, strict=True):
            outcome = self._analyse_one(path, folder, stem)
            if isinstance(outcome, str):
                problems.append(outcome)
                continue
            record, row, written = outcome
            records.append({**record, "stem": stem})
            rows.append(row)
            files += [str(file) for file in written]
        if rows:
            files.append(str(write_csv(rows, folder / "results.csv", METAPHASE_RESULT_COLUMNS)))
        if problems:
            gr.Warning(popup_text(problems))
        lead = ("Upload one or more images, then press **Segment**." if not paths else
                f"Analysed {len(records)} of {len(paths)} images as whole metaphases." if records else
                "No metaphase could be analysed.")
        reason = [f"Auto: every image is at least {METAPHASE_MIN_SIDE} x {METAPHASE_MIN_SIDE} pixels, so "
                  "they are taken for whole metaphases (choose Pair crop to segment them as crops)"] \
            if auto and paths else []
        return MetaphaseBatch(
            kept=self.kept.keep(records),
            chooser=gr.Dropdown(choices=[(r["name"], r["stem"]) for r in records],
                                value=records[0]["stem"] if records else None),
            status="\n".join([lead, *(f"- {page_text(line)}" for line in reason + problems)]),
            images=pd.DataFrame(rows, columns=list(METAPHASE_RESULT_COLUMNS)),
            downloads=files or None,
            shown=shown_of(records[0] if records else None),
        )

    def _analyse_one(self, path: str, folder: Path, stem: str) -> tuple[dict[str, str], dict, list[Path]] | str:
        """(kept record, results row, written files), or a message for the user; an unexpected
        failure is logged in full and summarised without the server's folders."""
        name = Path(path).name
        try:
            grey, notes = read_grey(path)
            result = analyse_metaphase(grey, self.segmenter)
            if not result.count:
                return f"{name}: " + next((n for n in result.notes if n.startswith(NO_CHROMOSOMES)), NO_CHROMOSOMES)
            written = save_metaphase_outputs(grey, result, folder, stem)
        except InputError as error:
            return str(error)
        except ValueError as error:  # amfl.metaphase.checked_grey: not a usable grey image
            return f"{name}: {error}"
        except Exception as error:  # a bug or a full disk must cost one image, not the page
            logger.exception("analysing the metaphase %s failed", path)
            return internal_error(name, error, [Path(path).parent, folder])
        by_suffix = {file.name[len(stem):]: str(file) for file in written}
        record = {"name": name, "summary": summary_text(name, result, notes),
                  **{field: by_suffix[suffix] for field, suffix in SHOWN_FILES.items()}}
        return record, metaphase_row(name, result), written

    def show(self, token: str | None, stem: str | None) -> Shown:
        """Chooser handler: another image of the session's batch, from its files."""
        record = next((r for r in self.kept.find(token) if r.get("stem") == stem), None)
        return shown_of(record, f"- {GONE}" if stem else "")


@dataclass(frozen=True)
class MetaphaseView:
    """The metaphase view's components (a column shown in place of the crop view's)."""

    column: Any
    summary: Any
    chooser: Any
    overlay: Any
    gallery: Any
    chromosomes: Any
    set_aside: Any
    images: Any
    downloads: Any

    @property
    def outputs(self) -> list[Any]:
        return [getattr(self, field.name) for field in dataclasses.fields(self)]

    def updates(self, routed: MetaphaseBatch | BatchViews, crop: Mapping[str, Any], crop_column: Any) -> dict:
        """{component: value} for Segment: ``routed``'s view shown, the other hidden; ``crop``:
        the crop view's components by name (its status is the page's status)."""
        metaphase = isinstance(routed, MetaphaseBatch)
        values = {self.column: gr.update(visible=metaphase), crop_column: gr.update(visible=not metaphase)}
        if not metaphase:
            return {**values, **updates(routed, crop)}
        values[crop["kept"]], values[crop["status"]] = routed.kept, routed.status  # shared with the crop view
        for field in dataclasses.fields(routed):
            if field.name not in ("kept", "status", "shown"):
                values[getattr(self, field.name)] = getattr(routed, field.name)
        return {**values, **self.shown_updates(routed.shown)}

    def shown_updates(self, shown: Shown) -> dict:
        return {getattr(self, field.name): getattr(shown, field.name) for field in dataclasses.fields(shown)}


def metaphase_layout(page: MetaphasePage, token: Any) -> MetaphaseView:
    """The metaphase view (hidden until a metaphase batch is shown), its chooser wired to
    ``page`` and ``token`` (the session's gr.State); build it inside the page's Blocks, where
    the crop view's results go."""
    with gr.Column(visible=False, elem_id="metaphase-view") as column:
        gr.Markdown(RELIABILITY, elem_id="metaphase-reliability")
        summary = gr.Markdown(elem_id="metaphase-summary")
        chooser = gr.Dropdown(label="Metaphase shown", choices=[], elem_id="metaphase-chooser")
        overlay = gr.Image(label="Chromosomes, numbered: * and a white outline = check it; grey outline "
                           "= set aside, not counted", format="png", interactive=False,
                           elem_id="metaphase-overlay")
        gallery = gr.Image(label="Gallery: every chromosome cut out and upright, longest first (a first "
                           "karyogram)", format="png", interactive=False, elem_id="metaphase-gallery")
        chromosomes = gr.Dataframe(headers=list(CHROMOSOME_COLUMNS), label="Chromosomes (box: top, left, "
                                   "bottom, right in pixels)", interactive=False, elem_id="metaphase-table")
        set_aside = gr.Dataframe(headers=list(SET_ASIDE_COLUMNS), label="Set aside, not counted, and why",
                                 interactive=False, elem_id="metaphase-set-aside")
        images = gr.Dataframe(headers=list(METAPHASE_RESULT_COLUMNS), label="All images", interactive=False,
                              elem_id="metaphase-images")
        downloads = gr.File(label="Downloads: instance maps (16-bit PNG of chromosome ids, overlaps in the "
                            "second), overlay, gallery, chromosome and set-aside CSVs, results.csv",
                            file_count="multiple", interactive=False, elem_id="metaphase-downloads")
    view = MetaphaseView(column, summary, chooser, overlay, gallery, chromosomes, set_aside, images, downloads)
    shown = [summary, overlay, gallery, chromosomes, set_aside]
    chooser.input(lambda kept, stem: view.shown_updates(page.show(kept, stem)), [token, chooser], shown,
                  api_visibility="private")
    return view
