"""amfl.outputs: ground truths matched to images by name, output names, result files and the
CSV of results (shared by the CLI and the app)."""

from __future__ import annotations

import csv
import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amfl.metrics import score_batch
from amfl.outputs import (
    MAX_NAME_BYTES,
    OUTPUT_SUFFIXES,
    RESULT_COLUMNS,
    TRUTH_SUFFIXES,
    atomic_write,
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


def test_output_stems_differ_in_more_than_case():
    """A.png and a.png would overwrite each other on macOS and Windows."""
    assert output_stems(["A.png", "a.png", "a.tif"]) == ["A_png", "a_png_2", "a_tif"]


def longest_output(stem: str) -> int:
    return max(len(f"{stem}{suffix}".encode()) for suffix in OUTPUT_SUFFIXES)


def test_long_names_sharing_a_prefix_get_distinct_stems_within_the_name_limit():
    names = ["p" * 240 + "_one.png", "p" * 240 + "_two.png", "p" * 240 + "_one.png"]  # 248 characters
    stems = output_stems(names)
    assert len(set(stems)) == 3 and all(longest_output(stem) == MAX_NAME_BYTES for stem in stems)
    assert all(stem.startswith("p" * 200) for stem in stems)
    assert stems[2].endswith(stems[0][-9:] + "_2")  # "~" and the hash of the name, numbered
    assert output_stems(names[:1]) == stems[:1]  # the same name, the same stem in every batch


def test_long_names_are_cut_at_a_character_boundary():
    [stem] = output_stems(["é" * 130 + ".png"])  # 260 bytes of UTF-8
    assert longest_output(stem) <= MAX_NAME_BYTES and stem.startswith("é" * 110)
    assert stem.encode().decode() == stem


def test_short_names_are_left_as_they_are():
    name = "q" * (MAX_NAME_BYTES - len("_difference.png")) + ".png"
    assert output_stems([name]) == [name[:-4]]


# --- Atomic writes ----------------------------------------------------------------------------


def test_atomic_write_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"old")
    seen = []

    def write(temporary):
        seen.append(temporary)
        assert temporary.parent == tmp_path and temporary.suffix == ".png" and temporary.name.startswith(".")
        assert path.read_bytes() == b"old"  # the final name is untouched until the rename
        temporary.write_bytes(b"new")

    assert atomic_write(path, write) == path
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like a plainly written file


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / ("n" * 250 + ".png")  # a temporary must fit even beside a long name
    path.write_bytes(b"old")

    def write_half(temporary):
        temporary.write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device", str(temporary))

    with pytest.raises(OSError, match="No space left on device") as error:
        atomic_write(path, write_half)
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(path)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_an_interrupted_atomic_write_leaves_no_temporary(tmp_path):
    def interrupted(temporary):
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.csv", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_name_too_long_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / ("n" * 300 + ".png")
    with pytest.raises(OSError) as error:
        atomic_write(path, lambda temporary: temporary.write_bytes(b"x"))
    assert error.value.errno == errno.ENAMETOOLONG and error.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []


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


def test_results_files_are_written_atomically(tmp_path, monkeypatch):
    """The overlay dies half-way: no partial overlay under its name, no temporary left."""
    import amfl.outputs

    def half(pixels, path):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(amfl.outputs, "save_png", half)
    with pytest.raises(OSError) as error:
        save_results(analysis("x.png"), tmp_path, "x")
    assert error.value.filename == str(tmp_path / "x_overlay.png")
    assert [path.name for path in tmp_path.iterdir()] == ["x_labels.png"]


def test_csv_columns_may_be_chosen_and_missing_cells_are_empty(tmp_path):
    path = write_csv([{"file": "a.png", "status": "ok"}, {"file": "b.png"}], tmp_path / "r.csv", ["file", "status"])
    assert path.read_text(encoding="utf-8").splitlines() == ["file,status", "a.png,ok", "b.png,"]
