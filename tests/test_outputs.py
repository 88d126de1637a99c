"""amfl.outputs: ground truths matched to images by name, output names, result files and the
CSV of results (shared by the CLI and the app)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amfl.metrics import score_batch
from amfl.outputs import (
    RESULT_COLUMNS,
    TRUTH_SUFFIXES,
    match_ground_truths,
    output_stems,
    result_row,
    save_results,
    write_csv,
)
from amfl.pictures import difference_image
from amfl.segmentation import Analysis, Segmentation
from conftest import example_arrays

GREY, TRUTH = example_arrays(1)


def analysis(name: str = "x.png", scored: bool = True) -> Analysis:
    """A known segmentation of a real crop: its ground truth with one row of chromosome 1
    called background, 12.34 ms, and (``scored``) the scores against the truth."""
    labels = TRUTH.copy()
    row = np.argmax((TRUTH == 1).any(axis=1))
    labels[row][labels[row] == 1] = 0
    segmentation = Segmentation(GREY.astype(np.float32), labels, False, 0.01234)
    if not scored:
        return Analysis(name, segmentation)
    return Analysis(name, segmentation, TRUTH, score_batch(labels, TRUTH).means)


# --- Matching ground truths -------------------------------------------------------------------


def test_ground_truths_are_matched_to_images_by_name():
    matched, unmatched = match_ground_truths(
        ["/up/a.png", "/up/b.tif", "/up/c.png"], ["/gt/a_label.png", "/gt/B.png", "/gt/z_mask.png"]
    )
    assert matched == {"/up/a.png": Path("/gt/a_label.png"), "/up/b.tif": Path("/gt/B.png")}
    assert unmatched == [Path("/gt/z_mask.png")]


def test_a_suffixed_truth_wins_and_a_file_is_never_its_own_truth():
    matched, unmatched = match_ground_truths(["/d/x.png", "/d/y.png"], ["/d/x.png", "/d/x_label.png", "/d/y.png"])
    assert matched == {"/d/x.png": Path("/d/x_label.png")}
    assert unmatched == [Path("/d/x.png"), Path("/d/y.png")]


def test_one_image_takes_one_truth_whatever_its_name():
    matched, unmatched = match_ground_truths(["/up/x.png"], ["/gt/anything.png"])
    assert matched == {"/up/x.png": Path("/gt/anything.png")} and unmatched == []


@pytest.mark.parametrize("suffix", TRUTH_SUFFIXES)
def test_every_truth_suffix_is_recognised(suffix):
    """x_ground_truth.png must not be read as the truth of "x_ground" (the longest suffix wins)."""
    matched, _ = match_ground_truths(["/up/cell.png", "/up/other.png"], [f"/gt/cell{suffix}.tif"])
    assert matched == {"/up/cell.png": Path(f"/gt/cell{suffix}.tif")}


def test_a_name_that_is_only_a_suffix_is_not_stripped_to_nothing():
    matched, unmatched = match_ground_truths(["/up/a.png", "/up/_label.png"], ["/gt/_label.png"])
    assert matched == {"/up/_label.png": Path("/gt/_label.png")} and unmatched == []


# --- Output names -----------------------------------------------------------------------------


def test_output_stems_stay_distinct():
    assert output_stems(["a.png", "b.png"]) == ["a", "b"]
    assert output_stems(["a.png", "a.tif", "a.png"]) == ["a_png", "a_tif", "a_png_2"]


# --- Result files and the CSV -----------------------------------------------------------------


def test_result_row_holds_the_size_areas_time_and_scores():
    scored = analysis()
    areas = scored.segmentation.areas()
    row = result_row(scored)
    assert list(row) == list(RESULT_COLUMNS)
    assert (row["file"], row["width_px"], row["height_px"], row["light_background"]) == ("x.png", 93, 94, False)
    assert row["inference_ms"] == 12.3
    assert {column: row[f"area_{column}_px"] for column in areas} == areas
    assert areas["background"] == int((scored.segmentation.labels == 0).sum())
    assert row["dice_percent"] == round(scored.scores["dice"], 4) and 90 < row["dice_percent"] < 100
    assert row["hausdorff_px"] == round(scored.scores["hausdorff"], 4) and row["hausdorff_px"] > 0


def test_without_scores_the_metric_cells_are_empty():
    row = result_row(analysis(scored=False))
    assert row["dice_percent"] == "" and row["hausdorff_px"] == "" and row["width_px"] == 93


def test_a_nan_score_is_an_empty_cell():
    scored = analysis()
    nan = Analysis("n.png", scored.segmentation, TRUTH, {**scored.scores, "hausdorff": float("nan")})
    assert result_row(nan)["hausdorff_px"] == ""


def test_results_files_and_csv(tmp_path):
    scored, plain = analysis("x.png"), analysis("plain.png", scored=False)
    paths = save_results(scored, tmp_path, "x", opacity=0.3)
    assert paths == [tmp_path / "x_labels.png", tmp_path / "x_overlay.png", tmp_path / "x_difference.png"]
    assert save_results(plain, tmp_path, "plain") == [tmp_path / "plain_labels.png", tmp_path / "plain_overlay.png"]
    with Image.open(paths[0]) as labels, Image.open(paths[1]) as overlay, Image.open(paths[2]) as difference:
        assert labels.mode == "P"
        np.testing.assert_array_equal(np.asarray(labels), scored.segmentation.labels)
        np.testing.assert_array_equal(np.asarray(overlay), scored.segmentation.overlay(0.3))
        np.testing.assert_array_equal(np.asarray(difference), difference_image(scored.segmentation.labels, TRUTH))
    write_csv([result_row(scored), result_row(plain)], tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == list(RESULT_COLUMNS)
    assert rows[0] == {column: str(value) for column, value in result_row(scored).items()}
    assert rows[1]["file"] == "plain.png" and rows[1]["dice_percent"] == ""
