"""amfl.demo with the bundled trained model: the page's handlers fill every view by name and
turn every bad input into a message, the examples are the committed test-split crops, the
page does not show server paths, and the real server answers concurrent requests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import amfl.demo as demo_module
import amfl.reading as reading
from amfl.demo import GONE, Page, build_demo, display_name, example_files, main, segment_batch, serve
from amfl.demo_views import BatchViews, Kept, enlarged
from amfl.models import create_model
from amfl.outputs import RESULT_COLUMNS, result_row
from amfl.pictures import colour_labels, difference_image
from amfl.segmentation import Segmenter, analyse
from conftest import BUNDLED_MODEL, EXAMPLE_COUNT, EXAMPLES_DIR, example_arrays, example_paths

#: Small images are shown enlarged 4 times (94 x 93 -> 376 x 372).
SHOWN = (94 * 4, 93 * 4, 3)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs, by name: real test-split crops in several formats."""
    folder = tmp_path_factory.mktemp("inputs")
    first, truth = example_arrays(1)
    second, _ = example_arrays(2)
    third, _ = example_arrays(3)
    paths = {
        "image16": folder / "sample.png",
        "truth": folder / "sample_label.png",
        "tiff16": folder / "second.tif",
        "rgba": folder / "rgba.png",
        "text": folder / "notes.png",
        "empty": folder / "empty.png",
        "small_truth": folder / "small.png",
        "binary_truth": folder / "binary.png",
    }
    Image.fromarray(first).save(paths["image16"])
    paths["truth"].write_bytes(example_paths(1)[1].read_bytes())
    tifffile.imwrite(paths["tiff16"], second)
    rgba = np.zeros((*third.shape, 4), np.uint8)
    rgba[..., :3] = np.clip(third, 0, 255)[..., None]
    rgba[..., 3] = 200
    Image.fromarray(rgba).save(paths["rgba"])
    paths["text"].write_text("this is not a picture")
    paths["empty"].write_bytes(b"")
    Image.fromarray(truth[:40]).save(paths["small_truth"])
    Image.fromarray((truth > 0).astype(np.uint8) * 255).save(paths["binary_truth"])
    return {name: str(path) for name, path in paths.items()}


def segment(segmenter, images, truths=None, opacity=0.5) -> tuple[BatchViews, list[str], list[Kept]]:
    """Page.segment outside a request (gr.Warning falls back to Python warnings): the views,
    the warnings and the results kept for the session."""
    page = Page(segmenter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        views = page.segment(images, truths, opacity)
    kept = [page.kept.find(views.kept, name) for name in page.kept.names(views.kept)]
    return views, [str(warning.message) for warning in caught], kept


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_one_image_with_ground_truth_fills_every_view(bundled_segmenter, files):
    views, warned, kept = segment(bundled_segmenter, [files["image16"]], [files["truth"]])
    expected = analyse(bundled_segmenter, files["image16"], files["truth"])
    labels = expected.segmentation.labels
    assert not warned and views.status == "Segmented 1 of 1 images."
    assert views.chooser.value == "sample.png" and [result.name for result in kept] == ["sample.png"]
    np.testing.assert_array_equal(kept[0].labels, labels)
    result = views.result
    assert pixels(result.overlay).shape == SHOWN
    np.testing.assert_array_equal(pixels(result.overlay), enlarged(expected.segmentation.overlay(0.5)))
    np.testing.assert_array_equal(pixels(result.label_map), enlarged(colour_labels(labels)))
    np.testing.assert_array_equal(pixels(result.difference), enlarged(difference_image(labels, expected.truth)))
    assert [caption for _, caption in result.chromosomes] == ["A mask", "A cut-out", "B mask", "B cut-out"]
    first, _ = expected.segmentation.chromosome_masks()
    np.testing.assert_array_equal(pixels(result.chromosomes[0][0])[..., 0], enlarged(first.astype(np.uint8) * 255))
    metrics = dict(zip(result.metrics["Metric"], result.metrics["Value"], strict=True))
    assert list(metrics) == ["Acc", "Dice", "IoU", "Recall", "Precision", "FNR", "FPR", "Hausdorff"]
    assert metrics["Dice"] == f"{expected.scores['dice']:.4f}" and float(metrics["Dice"]) > 95
    measured = dict(zip(result.measurements["Measurement"], result.measurements["Value"], strict=True))
    assert measured["Size"] == "93 x 94 px"
    assert measured["Overlap"] == f"{int((labels == 3).sum())} px" and measured["Light background inverted"] == "no"
    assert result.notes == ""
    assert list(views.table.columns) == list(RESULT_COLUMNS)
    row = {**result_row(expected), "inference_ms": views.table["inference_ms"][0]}
    assert views.table.iloc[0].to_dict() == row
    assert sorted(Path(path).name for path in views.downloads) == [
        "results.csv", "sample_difference.png", "sample_labels.png", "sample_overlay.png",
    ]


def test_a_batch_keeps_going_past_bad_files(bundled_segmenter, files):
    images = [files["image16"], files["text"], files["tiff16"], files["empty"], files["rgba"]]
    views, warned, kept = segment(bundled_segmenter, images)
    assert [result.name for result in kept] == ["sample.png", "second.tif", "rgba.png"]
    assert views.status.splitlines() == [
        "Segmented 3 of 5 images.",
        "- notes.png: not an image file that can be read (accepted: PNG, TIFF 8/16-bit, JPEG, BMP)",
        "- empty.png: the file is empty",
    ]
    assert warned == ["notes.png: not an image file that can be read (accepted: PNG, TIFF 8/16-bit, "
                      "JPEG, BMP) (and 1 more, listed on the page)"]
    assert list(views.table["file"]) == ["sample.png", "second.tif", "rgba.png"]
    assert views.chooser.choices == [(name, name) for name in ("sample.png", "second.tif", "rgba.png")]
    assert kept[2].notes == ("transparency (alpha channel) ignored",)
    assert views.result.notes == "- no ground truth given, so no metrics"


@pytest.mark.parametrize(
    ("truth", "message"),
    [("small_truth", "ground truth is 93 x 40 pixels"), ("binary_truth", "found values 255")],
)
def test_a_bad_ground_truth_explains_itself_and_the_image_is_still_shown(bundled_segmenter, files, truth, message):
    views, _, kept = segment(bundled_segmenter, [files["image16"]], [files[truth]])
    assert len(kept) == 1 and views.result.metrics.empty and views.result.difference is None
    assert views.result.overlay is not None
    assert views.result.notes.startswith("- no metrics: ground truth ") and message in views.result.notes


def test_a_huge_file_is_refused_with_the_limit(bundled_segmenter, files, monkeypatch):
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)
    views, warned, _ = segment(bundled_segmenter, [files["image16"]])
    assert views.status.startswith("No image could be segmented.\n- sample.png: the file is")
    assert "the limit is 0 MB" in views.status
    result = views.result
    assert (result.overlay, result.label_map, result.chromosomes, result.difference, result.notes) == (
        None, None, [], None, "",
    )
    assert result.measurements.empty and result.metrics.empty and views.downloads is None and len(warned) == 1


def test_nothing_uploaded_asks_for_an_image(bundled_segmenter):
    views, warned, kept = segment(bundled_segmenter, None)
    assert views.status == (
        "Upload one or more images, then press **Segment**.\n- Upload at least one image (PNG, TIFF, JPEG or BMP)."
    )
    assert warned == ["Upload at least one image (PNG, TIFF, JPEG or BMP)."]
    assert kept == [] and views.kept == "" and views.chooser.value is None


def test_an_unexpected_failure_costs_one_image_not_the_page(bundled_segmenter, files, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "analyse", broken)
    analyses, files_out, problems = segment_batch(bundled_segmenter, [files["image16"]], None, 0.5)
    assert analyses == [] and files_out == [] and problems == ["sample.png: internal error (RuntimeError: boom)"]


def test_unmatched_ground_truth_is_reported(bundled_segmenter, files):
    analyses, _, problems = segment_batch(
        bundled_segmenter, [files["image16"], files["tiff16"]], [files["small_truth"]], 0.5
    )
    assert [analysis.scores for analysis in analyses] == [None, None]
    assert problems == [
        "ground truth small.png matches no image by name (name it like the image, or e.g. IMAGE_label.png)"
    ]


def test_switching_images_and_opacity_reuse_the_results(bundled_segmenter, files):
    page = Page(bundled_segmenter)
    token = page.segment([files["image16"], files["tiff16"]], None, 0.5).kept
    second = analyse(bundled_segmenter, files["tiff16"]).segmentation
    views = page.show(token, "second.tif", 0.5)
    np.testing.assert_array_equal(pixels(views.overlay), enlarged(second.overlay(0.5)))
    assert views.metrics.empty and views.notes == "- no ground truth given, so no metrics"
    opaque = pixels(page.recolour(token, "second.tif", 1.0))
    np.testing.assert_array_equal(opaque, enlarged(second.overlay(1.0)))
    assert not np.array_equal(opaque, pixels(views.overlay))
    with pytest.warns(UserWarning, match="no longer kept"):
        assert page.recolour(token, "gone.png", 1.0) is None
    gone = page.show(token, "gone.png", 0.5)
    assert gone.overlay is None and gone.notes == f"- {GONE}"


def test_each_view_is_a_file_of_its_own_so_concurrent_requests_cannot_share_one(bundled_segmenter, files):
    """Gradio writes arrays in place under a content-derived name; files are copied safely."""
    page = Page(bundled_segmenter)
    token = page.segment([files["image16"]], None, 0.5).kept
    first, second = (page.show(token, "sample.png", 0.5) for _ in range(2))
    assert first.overlay != second.overlay
    assert Path(first.overlay).read_bytes() == Path(second.overlay).read_bytes()
    assert all(Path(path).is_file() for path, _ in first.chromosomes)


def test_small_images_are_enlarged_for_display_only():
    assert enlarged(np.zeros((94, 93), np.uint8)).shape == (376, 372)
    assert enlarged(np.zeros((500, 20), np.uint8)).shape == (500, 20)
    np.testing.assert_array_equal(enlarged(np.array([[1, 2]], np.uint8), 4), [[1, 1, 2, 2], [1, 1, 2, 2]])


# --- Examples -------------------------------------------------------------------------------


def test_example_files_pair_the_eight_committed_examples_in_order():
    examples = example_files(EXAMPLES_DIR)
    assert len(examples) == EXAMPLE_COUNT
    for number, ([image], [truth]) in enumerate(examples, start=1):
        assert (Path(image).name, Path(truth).name) == (f"example_{number}.png", f"example_{number}_label.png")
        assert Path(image).is_file() and Path(truth).is_file()


def test_example_files_order_by_number_and_skip_an_image_without_its_label(tmp_path):
    for name in ("example_10.png", "example_10_label.png", "example_2.png", "example_2_label.png",
                 "example_3.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert example_files(tmp_path) == [
        [[str(tmp_path / "example_2.png")], [str(tmp_path / "example_2_label.png")]],
        [[str(tmp_path / "example_10.png")], [str(tmp_path / "example_10_label.png")]],
    ]
    assert example_files(tmp_path / "absent") == [] and example_files(None) == []


# --- The page and the app -------------------------------------------------------------------


def page_text(demo) -> str:
    return "\n".join(
        str(component["props"].get("value")) for component in demo.get_config_file()["components"]
        if component["type"] == "markdown"
    )


def test_the_page_names_the_model_without_its_server_path(tmp_path):
    folder = tmp_path / "deep" / "models" / "mine"
    create_model("amfl-small", base_width=4).save_pretrained(folder)
    text = page_text(build_demo(Segmenter.from_pretrained(folder)))
    assert "Model: `models/mine`" in text and str(tmp_path) not in text
    assert display_name(str(folder)) == "models/mine"
    assert display_name("someone/amfl-small") == "someone/amfl-small"  # a Hub id as it is
    named = page_text(build_demo(Segmenter.from_pretrained(folder), model_name="amfl-small (bundled)"))
    assert "Model: `amfl-small (bundled)`." in named


def test_the_page_says_when_the_network_computes_in_bfloat16(tmp_path):
    folder = tmp_path / "mine"
    create_model("amfl-small", base_width=4).save_pretrained(folder)
    reduced = page_text(build_demo(Segmenter.from_pretrained(folder, "bfloat16")))
    assert f"Model: `{display_name(str(folder))}` (computing in bfloat16)." in reduced


def test_main_serves_the_default_model_with_the_committed_examples(monkeypatch):
    served = []
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    monkeypatch.setattr(demo_module, "serve", served.append)
    previous = torch.get_num_threads()
    try:
        main(default_model=BUNDLED_MODEL, examples_dir=EXAMPLES_DIR)
    finally:
        torch.set_num_threads(previous)
    config = served[0].get_config_file()
    samples = [c["props"]["samples"] for c in config["components"] if c["type"] == "dataset"]
    assert [len(rows) for rows in samples] == [EXAMPLE_COUNT, 4]  # the crops, then the whole metaphases
    assert "Model: `space/model`" in page_text(served[0])


def test_missing_default_model_stops_the_start_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(default_model=tmp_path / "space" / "model")
    message = str(exit_info.value.code)
    assert message.startswith("error: cannot start the AMFL app: no model to load: the default model folder")
    assert f"{tmp_path}/space/model does not exist" in message and "AMFL_MODEL is not set" in message


def test_a_bad_amfl_precision_stops_the_start_with_the_choices(monkeypatch):
    monkeypatch.setenv("AMFL_PRECISION", "half")
    with pytest.raises(SystemExit) as exit_info:
        main(default_model=BUNDLED_MODEL)
    assert "unknown precision 'half'; choose one of auto, float32, bfloat16 (from AMFL_PRECISION)" in str(exit_info.value.code)


def test_a_bad_amfl_model_is_named_in_the_message(tmp_path, monkeypatch):
    monkeypatch.setenv("AMFL_MODEL", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(default_model=BUNDLED_MODEL)
    assert str(exit_info.value.code).startswith(f"error: cannot start the AMFL app (AMFL_MODEL={str(tmp_path)!r})")


def named_outputs(client, api_name: str, result) -> dict[str, object]:
    """An API result by the elem_id of each output of the event named ``api_name``; the
    API leaves out State outputs (the session's token of kept results), so they are skipped
    here too."""
    components = {component["id"]: component for component in client.config["components"]}
    event = next(dependency for dependency in client.config["dependencies"] if dependency.get("api_name") == api_name)
    shown = [components[output] for output in event["outputs"] if components[output]["type"] != "state"]
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"][f"/{api_name}"]
    assert len(endpoint["returns"]) == len(shown)
    return dict(zip((component["props"]["elem_id"] for component in shown), result, strict=True))


def test_eight_concurrent_requests_to_the_real_server_all_succeed(bundled_segmenter, files):
    from gradio_client import Client, handle_file

    app = build_demo(bundled_segmenter)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        inputs = [files["image16"], files["tiff16"], files["rgba"], files["text"]] * 2
        # submit() returns at once; the eight requests are in flight together.
        jobs = [client.submit([handle_file(path)], None, 0.5, api_name="/segment") for path in inputs]
        results = [named_outputs(client, "segment", job.result(timeout=120)) for job in jobs]
    finally:
        app.close()
    names = {"sample.png": "sample", "second.tif": "second", "rgba.png": "rgba"}
    for path, result in zip(inputs, results, strict=True):
        name = Path(path).name
        if name == "notes.png":
            assert result["status"].startswith("No image could be segmented.\n- notes.png: not an image file")
            assert result["overlay"] is None and result["downloads"] is None
            continue
        assert result["status"] == "Segmented 1 of 1 images."
        assert result["chooser"]["value"] == name
        row = dict(zip(result["table"]["headers"], result["table"]["data"][0], strict=True))
        assert (row["file"], row["width_px"], row["height_px"]) == (name, 93, 94)
        expected = analyse(bundled_segmenter, path).segmentation
        assert row["area_overlap_px"] == int((expected.labels == 3).sum())
        assert sorted(Path(download).name for download in result["downloads"]) == sorted(
            [f"{names[name]}_labels.png", f"{names[name]}_overlay.png", "results.csv"]
        )
        np.testing.assert_array_equal(pixels(result["overlay"]), enlarged(expected.overlay(0.5)))


def test_old_download_folders_are_swept_at_most_once_a_minute(tmp_path, monkeypatch):
    import os
    import time

    import amfl.demo_views as views

    def old_folder(name):
        folder = tmp_path / name
        folder.mkdir()
        hours_ago = time.time() - views.OUTPUT_MAX_AGE_S - 60
        os.utime(folder, (hours_ago, hours_ago))
        return folder

    monkeypatch.setattr(views, "_LAST_SWEEP", {})
    stale, recent = old_folder("stale"), views.output_folder(tmp_path)
    views.output_folder(tmp_path)
    assert not stale.exists() and recent.is_dir()
    later = old_folder("later")
    views.output_folder(tmp_path)  # within the interval: not listed again
    assert later.exists()
    monkeypatch.setitem(views._LAST_SWEEP, tmp_path, time.time() - views.SWEEP_INTERVAL_S)
    views.output_folder(tmp_path)
    assert not later.exists() and recent.is_dir()
