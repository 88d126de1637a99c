"""python -m amfl.predict INPUT_DIR OUTPUT_DIR --model M: label PNGs, overlays, a CSV; bad
files fail alone (exit status 3), listed with the reason. The model is the bundled trained
one; the images are committed test-split crops. Write errors: test_predict_write_errors.py."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

import amfl.segmentation
from amfl.predict import EXIT_FAILED, NOTE_SEPARATOR, main
from amfl.segmentation import Segmenter, analyse
from conftest import BUNDLED_MODEL, example_arrays, example_paths


@pytest.fixture(scope="module")
def model_dir():
    return BUNDLED_MODEL


pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture
def folders(tmp_path):
    """Two good images (PNG, TIFF), a text file and an empty file; a ground truth for one."""
    images, truths = tmp_path / "in", tmp_path / "truth"
    images.mkdir(), truths.mkdir()
    (images / "one.png").write_bytes(example_paths(1)[0].read_bytes())
    tifffile.imwrite(images / "two.tif", example_arrays(2)[0])
    (images / "notes.txt").write_text("not an image")
    (images / "empty.png").write_bytes(b"")
    (truths / "one_label.png").write_bytes(example_paths(1)[1].read_bytes())
    return images, truths, tmp_path / "out"


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def segmented(rows):
    return [row for row in rows if row["status"] == "ok"]


def test_folder_is_segmented_and_bad_files_fail_alone(folders, model_dir, capsys):
    images, truths, out = folders
    code = main([str(images), str(out), "--model", str(model_dir), "--truth", str(truths)])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert {path.name for path in out.iterdir()} == {
        "one_labels.png", "one_overlay.png", "one_difference.png",
        "two_labels.png", "two_overlay.png", "results.csv",
    }
    every = read_rows(out / "results.csv")
    assert [(row["file"], row["status"][:20]) for row in every] == [
        ("empty.png", "failed: the file is "),
        ("notes.txt", "failed: not an image"),
        ("one.png", "ok"),
        ("two.tif", "ok"),
    ]
    assert every[0]["width_px"] == every[1]["area_overlap_px"] == ""
    rows = segmented(every)
    expected = analyse(Segmenter.from_pretrained(model_dir), images / "one.png", truths / "one_label.png")
    assert float(rows[0]["dice_percent"]) == round(expected.scores["dice"], 4) > 95
    assert int(rows[0]["area_overlap_px"]) == int((expected.segmentation.labels == 3).sum())
    assert rows[1]["dice_percent"] == "" and (rows[1]["width_px"], rows[1]["height_px"]) == ("93", "94")
    assert "failed empty.png: the file is empty" in captured.err
    assert "failed notes.txt: not an image" in captured.err and "Traceback" not in captured.err
    assert "4/4" in captured.err  # the tqdm progress bar
    assert "segmented 2 of 4 files" in captured.out and "(2 failed)" in captured.out
    with Image.open(out / "one_labels.png") as labels:
        assert labels.mode == "P"
        np.testing.assert_array_equal(np.asarray(labels), expected.segmentation.labels)


def test_quiet_prints_only_the_failed_files(folders, model_dir, capsys):
    images, _, out = folders
    assert main([str(images), str(out), "--model", str(model_dir), "--quiet"]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == captured.err.count("failed") == 2 and "4/4" not in captured.err


def test_a_control_character_in_a_name_keeps_the_report_on_one_line(folders, model_dir, capsys):
    images, _, out = folders
    (images / "bad\nname.png").write_text("not an image")
    assert main([str(images), str(out), "--model", str(model_dir), "--quiet"]) == EXIT_FAILED
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and any(line.startswith("failed bad\\nname.png: ") for line in lines), lines


def test_notes_are_kept_apart_even_when_a_note_holds_a_semicolon(folders, model_dir):
    images, _, out = folders
    rgba = np.dstack([example_arrays(1)[0].astype(np.uint8)] * 3 + [np.full(example_arrays(1)[0].shape, 128, np.uint8)])
    Image.fromarray(rgba).save(images / "pages.tif", save_all=True, append_images=[Image.fromarray(rgba)])
    main([str(images), str(out), "--model", str(model_dir), "--quiet"])
    row = next(row for row in read_rows(out / "results.csv") if row["file"] == "pages.tif")
    notes = row["notes"].split(NOTE_SEPARATOR)
    assert notes[0] == "read page 1 of 2; the other pages are ignored" and len(notes) == 2, notes


def test_missing_input_folder_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "absent"), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "input folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--opacity", "2"], "--opacity must lie in 0..1"), (["--threads", "0"], "at least 1")],
)
def test_bad_options_are_usage_errors(folders, capsys, extra, message):
    images, _, out = folders
    with pytest.raises(SystemExit):
        main([str(images), str(out), *extra])
    assert message in capsys.readouterr().err


def test_output_into_the_input_folder_is_refused(folders, capsys):
    images, _, _ = folders
    with pytest.raises(SystemExit):
        main([str(images), str(images)])
    assert "another folder" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(folders, tmp_path, capsys):
    images, _, out = folders
    assert main([str(images), str(out), "--model", str(tmp_path)]) == 1
    assert "error: model folder" in capsys.readouterr().err


def test_without_model_or_amfl_model_it_says_to_give_one(folders, monkeypatch, capsys):
    images, _, out = folders
    monkeypatch.delenv("AMFL_MODEL", raising=False)
    assert main([str(images), str(out)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no model given: pass a model folder or Hub id (--model), or set AMFL_MODEL")
    assert not out.exists()


def test_amfl_model_is_used_without_model(folders, model_dir, monkeypatch):
    images, _, out = folders
    monkeypatch.setenv("AMFL_MODEL", str(model_dir))
    assert main([str(images), str(out), "--quiet"]) == EXIT_FAILED
    assert [row["file"] for row in segmented(read_rows(out / "results.csv"))] == ["one.png", "two.tif"]


def test_folder_without_usable_images_fails(tmp_path, model_dir, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    assert main([str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(model_dir)]) == 1
    assert "segmented 0 of 1" in capsys.readouterr().out
    assert read_rows(tmp_path / "out" / "results.csv")[0]["status"].startswith("failed: not an image")


def test_module_runs_from_the_command_line(folders, model_dir):
    images, _, out = folders
    result = subprocess.run(
        [sys.executable, "-m", "amfl.predict", str(images), str(out), "--model", str(model_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == EXIT_FAILED, result.stderr
    assert len(segmented(read_rows(out / "results.csv"))) == 2
    assert "Traceback" not in result.stderr


def test_images_and_ground_truths_may_share_a_folder(folders, model_dir, capsys):
    images, truths, out = folders
    (truths / "one_label.png").rename(images / "one_label.png")
    assert main([str(images), str(out), "--model", str(model_dir), "--truth", str(images)]) == EXIT_FAILED
    rows = segmented(read_rows(out / "results.csv"))
    assert [row["file"] for row in rows] == ["one.png", "two.tif"]
    assert float(rows[0]["dice_percent"]) > 95 and rows[1]["dice_percent"] == ""
    assert "1 of 4 images have a ground truth" in capsys.readouterr().out


def test_a_folder_of_good_images_exits_with_zero(folders, model_dir):
    images, truths, out = folders
    (images / "notes.txt").unlink(), (images / "empty.png").unlink()
    assert main([str(images), str(out), "--model", str(model_dir), "--truth", str(truths), "--quiet"]) == 0
    assert [row["status"] for row in read_rows(out / "results.csv")] == ["ok", "ok"]
    assert not (out / "results.partial.csv").exists()


def test_onnxruntime_writes_the_labels_torch_writes(folders, model_dir, monkeypatch):
    images, _, out = folders
    (images / "notes.txt").unlink(), (images / "empty.png").unlink()
    exported = []
    export = amfl.segmentation.onnx_network
    monkeypatch.setattr(amfl.segmentation, "onnx_network", lambda *args: exported.append(args) or export(*args))
    labels = {}
    for runtime in ("torch", "onnxruntime"):
        assert main([str(images), str(out / runtime), "--model", str(model_dir), "--runtime", runtime, "--quiet"]) == 0
        labels[runtime] = [np.asarray(Image.open(out / runtime / f"{stem}_labels.png")) for stem in ("one", "two")]
    assert len(exported) == 1  # only the second run exported the network to ONNX
    for torch_labels, onnx_labels in zip(labels["torch"], labels["onnxruntime"], strict=True):
        np.testing.assert_array_equal(onnx_labels, torch_labels)


def test_onnxruntime_in_bfloat16_is_refused_before_anything_is_written(folders, model_dir, capsys):
    images, _, out = folders
    assert main([str(images), str(out), "--model", str(model_dir), "--runtime", "onnxruntime", "--precision", "bfloat16"]) == 1
    assert "error: cannot run the network in onnxruntime: it computes float32 only, not bfloat16" in capsys.readouterr().err
    assert not out.exists()
