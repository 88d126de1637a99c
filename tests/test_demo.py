"""amfl.demo: the page's handlers turn every bad input into a message, examples come from the
test split or are absent with a reason, and the real server answers concurrent requests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import amfl.demo as demo_module
import amfl.inference as inference
from amfl.demo import (
    Page,
    build_demo,
    enlarged,
    load_examples,
    main,
    segment_batch,
    serve,
    write_examples,
)
from amfl.inference import Segmenter, save_label_png
from amfl.models import create_model
from conftest import make_pairs

PAIRS = make_pairs(8)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)  # an untrained model; seeded, so what it predicts is the same each run
    create_model("amfl-small").save_pretrained(folder)
    previous = torch.get_num_threads()
    inference.limit_threads(1)
    yield Segmenter.from_pretrained(folder)
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs, by name."""
    folder = tmp_path_factory.mktemp("inputs")
    image = np.clip(PAIRS.images[0], 0, None).astype(np.uint16)
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
    Image.fromarray(image).save(paths["image16"])
    save_label_png(PAIRS.labels[0], paths["truth"])
    tifffile.imwrite(paths["tiff16"], image)
    rgba = np.zeros((*image.shape, 4), np.uint8)
    rgba[..., :3] = np.clip(image, 0, 255)[..., None]
    rgba[..., 3] = 200
    Image.fromarray(rgba).save(paths["rgba"])
    paths["text"].write_text("this is not a picture")
    paths["empty"].write_bytes(b"")
    Image.fromarray(PAIRS.labels[0][:40]).save(paths["small_truth"])
    Image.fromarray((PAIRS.labels[0] > 0).astype(np.uint8) * 255).save(paths["binary_truth"])
    return {name: str(path) for name, path in paths.items()}


def segment(segmenter, images, truths=None, opacity=0.5):
    """Page.segment outside a request: gr.Warning falls back to Python warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = Page(segmenter).segment(images, truths, opacity)
    return outputs, [str(warning.message) for warning in caught]


def test_one_image_with_ground_truth_fills_every_view(segmenter, files):
    outputs, warned = segment(segmenter, [files["image16"]], [files["truth"]])
    analyses, chooser, status, table, downloads, overlay, label_map, gallery, measurements, metrics, difference, notes = outputs
    assert not warned and status == "Segmented 1 of 1 images."
    assert chooser.value == "sample.png" and len(analyses) == 1
    shapes = {np.asarray(Image.open(path)).shape for path in (overlay, label_map, difference)}
    assert shapes == {(94 * 4, 93 * 4, 3)}
    assert [caption for _, caption in gallery] == ["A mask", "A cut-out", "B mask", "B cut-out"]
    assert list(metrics["Metric"]) == ["Acc", "Dice", "IoU", "Recall", "Precision", "FNR", "FPR", "Hausdorff"]
    assert "Inference time" in list(measurements["Measurement"])
    assert table.shape[0] == 1 and table["file"][0] == "sample.png"
    assert sorted(path.rsplit("/", 1)[1] for path in downloads) == [
        "results.csv", "sample_difference.png", "sample_labels.png", "sample_overlay.png",
    ]


def test_a_batch_keeps_going_past_bad_files(segmenter, files):
    images = [files["image16"], files["text"], files["tiff16"], files["empty"], files["rgba"]]
    outputs, warned = segment(segmenter, images)
    analyses, _, status, table, *_ = outputs
    assert [analysis.name for analysis in analyses] == ["sample.png", "second.tif", "rgba.png"]
    assert status.startswith("Segmented 3 of 5 images.")
    assert "notes.png: not an image file" in status and "empty.png: the file is empty" in status
    assert len(warned) == 1 and "and 1 more" in warned[0] and table.shape[0] == 3
    assert any("alpha" in note for note in analyses[2].segmentation.notes)


@pytest.mark.parametrize(
    ("truth", "message"),
    [("small_truth", "ground truth is 93 x 40 pixels"), ("binary_truth", "found values 255")],
)
def test_a_bad_ground_truth_explains_itself_and_the_image_is_still_shown(segmenter, files, truth, message):
    outputs, _ = segment(segmenter, [files["image16"]], [files[truth]])
    analyses, metrics, notes = outputs[0], outputs[9], outputs[11]
    assert len(analyses) == 1 and metrics.empty
    assert "no metrics" in notes and message in notes


def test_a_huge_file_is_refused_with_the_limit(segmenter, files, monkeypatch):
    monkeypatch.setattr(inference, "MAX_FILE_BYTES", 100)
    outputs, warned = segment(segmenter, [files["image16"]])
    assert "No image could be segmented." in outputs[2] and "the limit is" in outputs[2]
    assert outputs[5] is None and warned


def test_nothing_uploaded_asks_for_an_image(segmenter):
    outputs, warned = segment(segmenter, None)
    assert "Upload at least one image" in outputs[2] and warned


def test_an_unexpected_failure_costs_one_image_not_the_page(segmenter, files, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "analyse", broken)
    analyses, files_out, problems = segment_batch(segmenter, [files["image16"]], None, 0.5)
    assert analyses == [] and problems == ["sample.png: internal error (RuntimeError: boom)"]


def test_unmatched_ground_truth_is_reported(segmenter, files):
    analyses, _, problems = segment_batch(
        segmenter, [files["image16"], files["tiff16"]], [files["small_truth"]], 0.5
    )
    assert len(analyses) == 2 and "small.png matches no image" in problems[0]


def test_switching_images_and_opacity_reuse_the_results(segmenter, files):
    page = Page(segmenter)
    analyses = page.segment([files["image16"], files["tiff16"]], None, 0.5)[0]
    views = page.show(analyses, "second.tif", 0.5)
    half = np.asarray(Image.open(views[0]))
    assert analyses[1].segmentation.labels.any(), "the overlay can only change where chromosomes are"
    assert half.shape == (94 * 4, 93 * 4, 3) and views[4].empty
    opaque = np.asarray(Image.open(page.recolour(analyses, "second.tif", 1.0)))
    assert opaque.shape == half.shape and not np.array_equal(opaque, half)
    assert page.recolour(analyses, "gone.png", 1.0) is None


def test_each_view_is_a_file_of_its_own_so_concurrent_requests_cannot_share_one(segmenter, files):
    """Gradio writes arrays in place under a content-derived name; files are copied safely."""
    page = Page(segmenter)
    analyses = page.segment([files["image16"]], None, 0.5)[0]
    first, second = (page.show(analyses, "sample.png", 0.5) for _ in range(2))
    assert first[0] != second[0] and Path(first[0]).read_bytes() == Path(second[0]).read_bytes()
    assert all(Path(path).is_file() for path, _ in first[2])


def test_small_images_are_enlarged_for_display_only():
    assert enlarged(np.zeros((94, 93), np.uint8)).shape == (376, 372)
    assert enlarged(np.zeros((500, 20), np.uint8)).shape == (500, 20)


# --- Examples -------------------------------------------------------------------------------


def test_examples_are_written_once_and_reused(tmp_path, monkeypatch):
    folder = tmp_path / "examples"
    pairs = write_examples(PAIRS, folder, 3)
    assert [image.name for image, _ in pairs] == ["example_1.png", "example_2.png", "example_3.png"]
    with Image.open(pairs[0][0]) as image:
        assert image.mode.startswith("I")  # 16-bit: overlap sums above 255 survive
    np.testing.assert_array_equal(np.asarray(Image.open(pairs[0][1])), PAIRS.labels[0])

    def no_dataset(**kwargs):
        raise AssertionError("the dataset must not be loaded when the examples exist")

    monkeypatch.setattr("amfl.data.dataset.load_pairs", no_dataset)
    examples, note = load_examples(3, folder)
    assert examples[0] == [[str(pairs[0][0])], [str(pairs[0][1])]]
    assert note.startswith("3 examples from the test split")


def test_without_source_images_there_are_no_examples_and_the_page_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("AMFL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("amfl.data.sources.DOWNLOAD_URL", "http://127.0.0.1:9/{name}")  # offline
    examples, note = load_examples(2, tmp_path / "examples", source_dir=tmp_path / "no-data")
    assert examples == []
    assert "No examples" in note and "AMFL_DATA" in note and "no-data" in note
    assert "could not download DAPI.tif from http://127.0.0.1:9/DAPI.tif" in note


@pytest.mark.slow
def test_examples_from_the_real_test_split(source_dir, built, tmp_path, monkeypatch):
    """Uses the session's rebuilt dataset (conftest; about 45 s) through the real loader."""
    monkeypatch.setattr("amfl.data.dataset.default_cache_path", lambda: built.path)
    examples, note = load_examples(2, tmp_path / "examples", source_dir=source_dir)
    assert len(examples) == 2 and "test split" in note


# --- The app --------------------------------------------------------------------------------


def test_missing_default_model_stops_the_start_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    monkeypatch.setattr(inference, "DEFAULT_MODEL_DIR", tmp_path / "space" / "model")
    with pytest.raises(SystemExit) as exit_info:
        main()
    message = str(exit_info.value.code)
    assert "space/model" in message and "AMFL_MODEL" in message


def test_eight_concurrent_requests_to_the_real_server_all_succeed(segmenter, files):
    from gradio_client import Client, handle_file

    app = build_demo(segmenter)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        inputs = [files["image16"], files["tiff16"], files["rgba"], files["text"]] * 2
        # submit() returns at once; the eight requests are in flight together.
        jobs = [
            client.submit([handle_file(path)], None, 0.5, api_name="/segment") for path in inputs
        ]
        results = [job.result(timeout=120) for job in jobs]
    finally:
        app.close()
    statuses = [result[1] for result in results]
    assert statuses.count("Segmented 1 of 1 images.") == 6
    assert sum("not an image file" in status for status in statuses) == 2
    for result in results:
        if result[1].startswith("Segmented"):
            assert result[2]["data"][0][1:3] == [93, 94]  # width, height
            assert any(path.endswith("_labels.png") for path in result[3])
