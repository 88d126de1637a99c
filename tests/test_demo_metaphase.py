"""amfl.demo_metaphase with the bundled trained model: which view a batch gets (Auto by size,
or the page's choice), what the metaphase view shows (count, summary, overlay, gallery,
tables, downloads) against amfl.metaphase run directly, bad files costing only themselves,
the server keeping paths not pixels under the session's one token, the large-image lane,
the shipped examples, and one call of the launched server's API."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from PIL import Image

import amfl.demo_metaphase as metaphase_module
from amfl.demo import Page, build_demo, serve
from amfl.demo_gate import BUSY_MESSAGE, LaneFull
from amfl.demo_metaphase import (
    METAPHASE_MIN_SIDE, MODES, KeptMetaphases, MetaphaseBatch, MetaphasePage, metaphase_example_files,
    wants_metaphase,
)
from amfl.metaphase import analyse_metaphase
from amfl.metaphase_outputs import METAPHASE_SUFFIXES, chromosome_rows, set_aside_rows, summary_line
from amfl.reading import InputError, read_grey
from amfl.space import ADIR_EXAMPLES, METAPHASE_EXAMPLES, POMMIER_EXAMPLE
from conftest import EXAMPLES_DIR, example_paths

#: The synthetic metaphase: both sides over METAPHASE_MIN_SIDE.
SHAPE = (400, 440)
#: (row, column) ends of separate rods, 9 px thick, and two rods crossing at (195, 215).
RODS = [((120, 60), (170, 95)), ((200, 50), (200, 115)), ((250, 70), (295, 115)), ((110, 150), (140, 200)),
        ((300, 170), (310, 240)), ((230, 290), (280, 330))]
CROSSING = [((160, 180), (230, 250)), ((160, 250), (230, 180))]
#: A window of the synthetic metaphase smaller than METAPHASE_MIN_SIDE on one side.
SMALL = np.s_[40:340, 20:380]
REAL = EXAMPLES_DIR / METAPHASE_EXAMPLES / Path(ADIR_EXAMPLES[0]).name


def synthetic_metaphase(seed: int = 0) -> np.ndarray:
    """uint8: bright rods on a dark, uneven background, blurred, with noise."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    signal = np.zeros(SHAPE, np.float32)
    for ends, level in [(ends, 110) for ends in RODS] + [(ends, 100) for ends in CROSSING]:
        (r0, c0), (r1, c1) = ends
        layer = np.zeros(SHAPE, np.uint8)
        cv2.line(layer, (c0, r0), (c1, r1), 1, 9)
        signal += level * layer
    image = 15 + 30 * columns / SHAPE[1] + 10 * rows / SHAPE[0] + cv2.GaussianBlur(signal, (0, 0), 1.5)
    return np.clip(image + 3 * rng.standard_normal(SHAPE), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("metaphases")
    image = synthetic_metaphase()
    paths = {"metaphase": folder / "metaphase.png", "small": folder / "small.png", "crop": folder / "crop.png",
             "text": folder / "notes.tif", "dark": folder / "dark.png", "large": folder / "large.png"}
    Image.fromarray(image).save(paths["metaphase"])
    Image.fromarray(image[SMALL]).save(paths["small"])
    paths["crop"].write_bytes(example_paths(1)[0].read_bytes())
    paths["text"].write_text("not a picture")
    Image.fromarray(np.zeros((400, 400), np.uint8)).save(paths["dark"])
    Image.fromarray(np.zeros((1100, 1100), np.uint8)).save(paths["large"])
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def expected(bundled_segmenter, files):
    """analyse_metaphase run directly on each image, by file name."""
    paths = [files["metaphase"], files["small"], str(REAL)]
    return {Path(path).name: analyse_metaphase(read_grey(path)[0], bundled_segmenter) for path in paths}


@pytest.fixture(scope="module")
def analyse_event(bundled_segmenter):
    """The page's Segment handler (the /analyse event) of a built demo: called in process, it
    returns {component: value}; ``call`` gives them by elem_id, the session's token as "token"."""
    demo = build_demo(bundled_segmenter)
    [event] = [fn for fn in demo.fns.values() if fn.api_name == "analyse"]

    def call(paths, mode="Auto", truths=None):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = event.fn(paths, truths, 0.5, mode, "")
        named = {component.elem_id: value for component, value in values.items() if component.elem_id}
        [token] = [value for component, value in values.items() if isinstance(component, gr.State)]
        return {**named, "token": token, "warnings": [str(warning.message) for warning in caught]}

    return call


def shown(values: dict, view: str) -> bool:
    return values[view]["visible"]


def test_auto_sends_a_batch_of_metaphase_sized_images_to_the_metaphase_view(analyse_event, files, expected):
    values = analyse_event([files["metaphase"], str(REAL)])
    assert shown(values, "metaphase-view") and not shown(values, "crop-view")
    assert values["status"].splitlines() == [
        "Analysed 2 of 2 images as whole metaphases.",
        f"- Auto: every image is at least {METAPHASE_MIN_SIDE} x {METAPHASE_MIN_SIDE} pixels, so they are taken "
        "for whole metaphases (choose Pair crop to segment them as crops)",
    ]
    result = expected["metaphase.png"]
    assert result.count == len(RODS) + 2  # the crossing pair counted as two
    assert values["metaphase-summary"].startswith(f"### {result.count} chromosomes counted in metaphase.png\n")
    assert summary_line("metaphase.png", result) in values["metaphase-summary"]
    table = values["metaphase-images"]
    assert list(table["file"]) == ["metaphase.png", REAL.name]
    assert list(table["chromosome_count"]) == [result.count, expected[REAL.name].count]
    assert values["metaphase-table"].to_dict("records") == chromosome_rows(result)
    assert values["metaphase-set-aside"].to_dict("records") == set_aside_rows(result)
    assert Path(values["metaphase-overlay"]).name == "metaphase_overlay.png"
    assert Path(values["metaphase-gallery"]).name == "metaphase_gallery.png"
    assert [name for name, _ in values["metaphase-chooser"].choices] == ["metaphase.png", REAL.name]


def test_auto_sends_a_batch_of_crops_to_the_crop_view_without_a_note(analyse_event, files):
    values = analyse_event([files["crop"]])
    assert shown(values, "crop-view") and not shown(values, "metaphase-view")
    assert values["status"] == "Segmented 1 of 1 images." and values["overlay"] is not None
    assert "metaphase-summary" not in values and "metaphase-downloads" not in values  # left as they were


@pytest.mark.parametrize("mode", ["Auto", "Pair crop"])
def test_a_metaphase_in_a_crop_batch_is_segmented_as_a_crop_with_a_note(analyse_event, files, mode):
    values = analyse_event([files["crop"], files["metaphase"]], mode)
    assert shown(values, "crop-view") and not shown(values, "metaphase-view")
    note = ("metaphase.png (440 x 400 px) looks like a whole metaphase, not a crop of one overlapping pair: the "
            "crop model's labels mean little there. Choose Whole metaphase beside the Segment button to count "
            "and separate the chromosomes.")
    assert values["status"].splitlines() == ["Segmented 2 of 2 images.", f"- {note}"]
    assert note in values["warnings"]


def test_whole_metaphase_is_a_choice_for_a_smaller_image(analyse_event, files, expected):
    assert min(Image.open(files["small"]).size) < METAPHASE_MIN_SIDE
    assert shown(analyse_event([files["small"]]), "crop-view")  # Auto: a crop, by its size
    values = analyse_event([files["small"]], "Whole metaphase")
    assert shown(values, "metaphase-view") and not shown(values, "crop-view")
    assert values["status"] == "Analysed 1 of 1 images as whole metaphases."  # chosen, not Auto
    count = expected["small.png"].count
    assert count > 0 and values["metaphase-summary"].startswith(f"### {count} chromosomes counted in small.png")


def test_the_downloads_hold_every_file_of_each_image_and_a_results_csv_of_the_counts(analyse_event, files, expected):
    values = analyse_event([files["metaphase"], files["small"]], "Whole metaphase")
    names = [Path(path).name for path in values["metaphase-downloads"]]
    assert names == [f"{stem}{suffix}" for stem in ("metaphase", "small") for suffix in METAPHASE_SUFFIXES] + [
        "results.csv"]
    with open(values["metaphase-downloads"][-1], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["file"], int(row["chromosome_count"])) for row in rows] == [
        ("metaphase.png", expected["metaphase.png"].count), ("small.png", expected["small.png"].count)]


def test_a_bad_file_costs_only_itself_and_is_listed_with_its_message(analyse_event, files, expected):
    with pytest.raises(InputError) as unreadable:
        read_grey(files["text"])
    values = analyse_event([files["text"], files["metaphase"], files["dark"]])  # Auto: unreadable ones do not count
    assert shown(values, "metaphase-view")
    status = values["status"].splitlines()
    assert status[0] == "Analysed 1 of 3 images as whole metaphases."
    assert status[2:] == [f"- {unreadable.value}", "- dark.png: no chromosomes found: the image has no foreground"]
    assert values["warnings"] == [f"{unreadable.value} (and 1 more, listed on the page)"]
    assert list(values["metaphase-images"]["chromosome_count"]) == [expected["metaphase.png"].count]
    assert values["metaphase-summary"].startswith("### 8 chromosomes counted in metaphase.png")


def test_nothing_usable_gives_a_message_and_empty_views(analyse_event, files):
    values = analyse_event([files["text"]], "Whole metaphase")
    assert values["status"].startswith("No metaphase could be analysed.\n- notes.tif: not an image file")
    assert values["metaphase-overlay"] is None and values["metaphase-downloads"] is None
    values = analyse_event([files["metaphase"]], "Whole metaphase", truths=[files["crop"]])
    assert "- ground truths are not used for whole metaphases (1 given;" in values["status"]


def test_the_server_keeps_file_paths_and_text_and_shows_another_image_from_its_files(bundled_segmenter, files,
                                                                                      expected):
    page = MetaphasePage(bundled_segmenter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = page.segment([files["metaphase"], files["small"]])
    assert isinstance(batch.kept, str) and len(batch.kept) < 100  # what the session's gr.State holds
    records = page.kept.find(batch.kept)
    assert [record["name"] for record in records] == ["metaphase.png", "small.png"]
    assert all(isinstance(value, str) for record in records for value in record.values())  # no arrays
    again = page.show(batch.kept, records[1]["stem"])
    assert again.summary.startswith(f"### {expected['small.png'].count} chromosomes counted in small.png")
    assert again.overlay == records[1]["overlay"] and Path(again.overlay).name == "small_overlay.png"
    assert again.chromosomes.to_dict("records") == chromosome_rows(expected["small.png"])
    Path(records[1]["gallery"]).unlink()  # swept from the server
    gone = page.show(batch.kept, records[1]["stem"])
    assert gone.overlay is None and gone.summary.startswith("- This result is no longer kept on the server")
    assert page.show("unknown", records[0]["stem"]).overlay is None


def test_a_new_batch_of_either_kind_drops_the_sessions_previous_one(bundled_segmenter, files):
    crops = Page(bundled_segmenter)
    page = MetaphasePage(bundled_segmenter, crop_kept=crops.kept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = crops.segment([files["crop"]], None, 0.5)
        second = page.route([files["metaphase"]], None, "Auto", first.kept, crop=lambda: None)
        assert isinstance(second, MetaphaseBatch) and crops.kept.names(first.kept) == []
        third = page.route([files["crop"]], None, "Auto", second.kept,
                           crop=lambda: crops.segment([files["crop"]], None, 0.5, second.kept))
    assert page.kept.find(second.kept) == [] and crops.kept.names(third.kept) == ["crop.png"]
    fourth = page.segment([files["metaphase"]])
    page.discard(fourth.kept)  # the session state's delete callback
    assert page.kept.find(fourth.kept) == []


def test_the_kept_records_are_bounded_in_number_and_age():
    now = [0.0]
    kept = KeptMetaphases(max_records=3, max_age_s=60, clock=lambda: now[0])
    first, second = kept.keep([{"name": "a"}, {"name": "b"}]), kept.keep([{"name": "c"}])
    assert kept.find(second) == [{"name": "c"}] and [r["name"] for r in kept.find(first)] == ["a", "b"]
    third = kept.keep([{"name": "d"}])  # 4 records: the least recently used batch goes
    assert kept.find(second) == [] and kept.find(first) and kept.find(third)
    now[0] = 61.0
    assert kept.find(first) == [] and kept.find(third) == [] and kept.keep([]) == ""


def test_a_bad_mode_is_refused_with_the_choices():
    with pytest.raises(gr.Error) as caught:
        wants_metaphase([], "metaphase")
    assert caught.value.message == "The mode must be one of 'Auto', 'Pair crop', 'Whole metaphase'; got 'metaphase'."
    assert MODES == ("Auto", "Pair crop", "Whole metaphase")


class RecordingGate:
    """Stands in for the lane of large images: records whether each batch was large."""

    def __init__(self, full: bool = False) -> None:
        self.large, self.full = [], full

    def run(self, large, function, *args):
        self.large.append(large)
        if self.full:
            raise LaneFull("full")
        return function(*args)


def test_metaphase_batches_go_through_the_lane_of_large_images(bundled_segmenter, files):
    gate = RecordingGate()
    page = MetaphasePage(bundled_segmenter, gate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page.segment([files["metaphase"]])
        page.segment([files["metaphase"], files["large"]])
    assert gate.large == [False, True]
    with pytest.raises(gr.Error) as caught:
        MetaphasePage(bundled_segmenter, RecordingGate(full=True)).segment([files["large"]])
    assert caught.value.message == BUSY_MESSAGE


def test_an_unexpected_failure_costs_one_image_and_hides_the_server_folders(bundled_segmenter, files, monkeypatch):
    def broken(grey, segmenter):
        raise OSError(f"[Errno 28] No space left on device: '{files['metaphase']}'")

    monkeypatch.setattr(metaphase_module, "analyse_metaphase", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = MetaphasePage(bundled_segmenter).segment([files["metaphase"]])
    assert batch.status.splitlines()[1] == (
        "- metaphase.png: internal error (OSError: [Errno 28] No space left on device: 'metaphase.png')")


def test_the_examples_folder_ships_the_metaphases_with_their_licence(bundled_segmenter):
    rows = metaphase_example_files(EXAMPLES_DIR)
    names = sorted([POMMIER_EXAMPLE, *(Path(relative).name for relative in ADIR_EXAMPLES)])
    assert [(Path(image).name, truth, mode) for [image], truth, mode in rows] == [
        (name, None, "Whole metaphase") for name in names]
    folder = EXAMPLES_DIR / METAPHASE_EXAMPLES
    assert sorted(path.name for path in folder.iterdir()) == sorted([*names, "LICENCE.md", "README.TXT"])
    assert np.asarray(Image.open(folder / POMMIER_EXAMPLE)).shape == (850, 850)  # the metaphase, not the file
    licence = (folder / "LICENCE.md").read_text(encoding="utf-8")
    assert "Pommier" in licence and "Advanced Digital Imaging Research" in licence and "`README.TXT`" in licence
    assert (folder / "README.TXT").read_text(encoding="utf-8").startswith(
        "Copyright (c) 2000 Advanced Digital Imaging Research\nAll rights reserved.")
    assert metaphase_example_files(EXAMPLES_DIR / "absent") == [] and metaphase_example_files(None) == []
    config = build_demo(bundled_segmenter, metaphase_examples=rows).get_config_file()
    [samples] = [c["props"]["samples"] for c in config["components"] if c["type"] == "dataset"]
    assert samples == [[name, "Whole metaphase"] for name in names]  # Gradio leaves out the empty truths


# --- Through the launched server --------------------------------------------------------------


def by_elem_id(client, api_name: str, result) -> dict[str, object]:
    """An API result by the elem_id of each output the API returns (not State, not layout)."""
    components = {component["id"]: component for component in client.config["components"]}
    event = next(d for d in client.config["dependencies"] if d.get("api_name") == api_name)
    returned = [components[output] for output in event["outputs"] if not components[output].get("skip_api")]
    assert len(returned) == len(result)
    return dict(zip((component["props"]["elem_id"] for component in returned), result, strict=True))


def test_api_one_call_in_whole_metaphase_mode_returns_the_count(bundled_segmenter, files, expected):
    from gradio_client import Client, handle_file

    app = build_demo(bundled_segmenter)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        result = client.predict([handle_file(files["small"])], None, 0.5, "Whole metaphase", api_name="/analyse")
        crop = client.predict([handle_file(files["metaphase"])], None, 0.5, api_name="/segment")
    finally:
        app.close()
    values = by_elem_id(client, "analyse", result)
    count = expected["small.png"].count
    assert values["status"] == "Analysed 1 of 1 images as whole metaphases."
    assert values["metaphase-summary"].startswith(f"### {count} chromosomes counted in small.png")
    table = values["metaphase-images"]
    assert dict(zip(table["headers"], table["data"][0], strict=False))["chromosome_count"] == count
    assert [Path(path).name for path in values["metaphase-downloads"]] == [
        f"small{suffix}" for suffix in METAPHASE_SUFFIXES] + ["results.csv"]
    assert crop[1] == "Segmented 1 of 1 images."  # /segment: every image a pair crop, as before


def test_the_mode_choice_and_the_views_are_on_the_page(bundled_segmenter):
    config = build_demo(bundled_segmenter).get_config_file()
    by_id = {c["props"].get("elem_id"): c for c in config["components"]}
    assert by_id["mode"]["props"]["value"] == "Auto"
    assert [choice[0] for choice in by_id["mode"]["props"]["choices"]] == list(MODES)
    assert by_id["metaphase-view"]["props"]["visible"] is False and by_id["crop-view"]["props"]["visible"] is True
