"""python -m amfl.predict when writing fails or is cut short: a full disk, a name too long
or a folder that refuses writes costs one image, not the batch; outputs are written
atomically; results.csv lists every file with its status, and a stale one never survives."""

from __future__ import annotations

import csv
import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import amfl.outputs
import amfl.predict
import amfl.results_table
from amfl.outputs import STALE_TEMPORARY_S, TEMPORARY_PREFIX
from amfl.predict import CSV_NAME, EXIT_FAILED, EXIT_FATAL, PARTIAL_CSV_NAME, main
from conftest import BUNDLED_MODEL, example_arrays, example_paths

NAMES = ("a.png", "b.png", "c.png")


pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture
def folders(tmp_path):
    """Three good images a, b, c (no ground truths) and the output folder."""
    images = tmp_path / "in"
    images.mkdir()
    for number, name in enumerate(NAMES, start=1):
        (images / name).write_bytes(example_paths(number)[0].read_bytes())
    return images, tmp_path / "out"


def run(images: Path, out: Path, *extra: str) -> int:
    return main([str(images), str(out), "--model", str(BUNDLED_MODEL), "--quiet", *extra])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def fail_on_call(monkeypatch, function_name: str, call: int, error: BaseException, partial: bytes = b""):
    """Make ``amfl.outputs.<function_name>`` raise ``error`` on its ``call``-th call (1-based),
    after writing ``partial`` to the path it was given (a write cut short)."""
    real = getattr(amfl.outputs, function_name)
    calls = []

    def fake(pixels, path):
        calls.append(path)
        if len(calls) == call:
            if partial:
                Path(path).write_bytes(partial)
            raise error
        return real(pixels, path)

    monkeypatch.setattr(amfl.outputs, function_name, fake)


def assert_only_outputs_of(out: Path, stems: list[str]) -> None:
    """Exactly the outputs of ``stems`` and the CSV: no partial file, no temporary left."""
    expected = {f"{stem}_{kind}.png" for stem in stems for kind in ("labels", "overlay")} | {CSV_NAME}
    assert {path.name for path in out.iterdir()} == expected


@pytest.mark.parametrize(
    ("function_name", "error", "reason"),
    [
        ("save_png", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
        ("save_label_png", OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG)), "File name too long"),
        ("save_png", PermissionError(errno.EACCES, os.strerror(errno.EACCES)), "Permission denied"),
    ],
    ids=["ENOSPC", "ENAMETOOLONG", "EACCES"],
)
def test_a_write_error_costs_one_image_not_the_batch(folders, monkeypatch, capsys, function_name, error, reason):
    images, out = folders
    fail_on_call(monkeypatch, function_name, 2, error)  # the second image, b.png
    assert run(images, out) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "b.png" in line]
    assert line.startswith("failed b.png: cannot write b_") and reason in line
    assert_only_outputs_of(out, ["a", "c"])
    rows = read_rows(out / CSV_NAME)
    assert [(row["file"], row["status"][:7]) for row in rows] == [("a.png", "ok"), ("b.png", "failed:"), ("c.png", "ok")]
    assert reason in rows[1]["status"] and rows[1]["width_px"] == ""
    assert rows[2]["width_px"] == "93"


def test_a_write_cut_short_leaves_no_partial_file(folders, monkeypatch):
    """The overlay of b.png dies half-way: no b_overlay.png (nor b_labels.png, written before
    it) under its final name, no temporary file left, a and c complete."""
    images, out = folders
    fail_on_call(monkeypatch, "save_png", 2, OSError(errno.ENOSPC, "No space left on device"), b"\x89PNG\r\n\x1a\n")
    assert run(images, out) == EXIT_FAILED
    assert_only_outputs_of(out, ["a", "c"])
    for stem in ("a", "c"):
        with Image.open(out / f"{stem}_overlay.png") as overlay:
            assert overlay.size == (93, 94)
    assert [row["status"] for row in read_rows(out / CSV_NAME)][::2] == ["ok", "ok"]


def test_a_stale_results_csv_never_survives_a_run(folders, monkeypatch):
    images, out = folders
    out.mkdir()
    (out / CSV_NAME).write_text("file,status\nold.png,ok\n")
    (out / "b_overlay.png").write_bytes(b"an older run's overlay")
    fail_on_call(monkeypatch, "save_png", 2, OSError(errno.ENOSPC, "No space left on device"))
    assert run(images, out) == EXIT_FAILED
    assert [row["file"] for row in read_rows(out / CSV_NAME)] == list(NAMES)
    assert not (out / "b_overlay.png").exists()  # b failed: none of its outputs look current


def test_an_interrupted_run_keeps_the_rows_done_and_drops_the_stale_csv(folders, monkeypatch):
    images, out = folders
    out.mkdir()
    (out / CSV_NAME).write_text("file,status\nold.png,ok\n")
    real, calls = amfl.predict.analyse, []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(amfl.predict, "analyse", interrupted)
    assert run(images, out) == 130
    assert not (out / CSV_NAME).exists()
    assert [(row["file"], row["status"]) for row in read_rows(out / PARTIAL_CSV_NAME)] == [("a.png", "ok"), ("b.png", "ok")]
    assert {path.name for path in out.iterdir()} == {
        "a_labels.png", "a_overlay.png", "b_labels.png", "b_overlay.png", PARTIAL_CSV_NAME
    }


def test_a_segmentation_error_costs_one_image(folders, monkeypatch, capsys):
    images, out = folders
    real = amfl.predict.analyse

    def broken(segmenter, image, *args, **kwargs):
        if Path(image).name == "b.png":
            raise RuntimeError("out of memory")
        return real(segmenter, image, *args, **kwargs)

    monkeypatch.setattr(amfl.predict, "analyse", broken)
    assert run(images, out) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "failed b.png: RuntimeError: out of memory" in err and "Traceback" not in err
    assert [row["status"] for row in read_rows(out / CSV_NAME)] == ["ok", "failed: RuntimeError: out of memory", "ok"]


def test_when_results_csv_cannot_be_written_it_says_so(folders, monkeypatch, capsys):
    images, out = folders

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / CSV_NAME))

    monkeypatch.setattr(amfl.results_table, "write_csv", full)
    assert run(images, out) == EXIT_FATAL
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"error: cannot write {out / CSV_NAME}: No space left on device" in err
    assert PARTIAL_CSV_NAME in err  # where the rows of the images done are
    assert len(read_rows(out / PARTIAL_CSV_NAME)) == 3


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_a_clear_error(folders, capsys):
    images, out = folders
    out.mkdir()
    out.chmod(0o555)
    try:
        assert run(images, out) == EXIT_FATAL
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert f"error: cannot write into {out}" in err and "Permission denied" in err
    assert "Traceback" not in err and list(out.iterdir()) == []


def test_an_output_folder_refusing_writes_is_a_clear_error(folders, monkeypatch, capsys):
    """The same as a read-only folder, for root too: every open() in it is refused."""
    images, out = folders
    real_open = open

    def refusing(file, *args, **kwargs):
        if Path(file).parent == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing)
    assert run(images, out) == EXIT_FATAL
    err = capsys.readouterr().err
    assert f"error: cannot write into {out}" in err and "Permission denied" in err and "Traceback" not in err


# --- Names, hidden files and notes -------------------------------------------------------------


def test_long_names_sharing_a_prefix_get_distinct_outputs_within_255_bytes(tmp_path):
    images, out = tmp_path / "in", tmp_path / "out"
    images.mkdir()
    names = ["c" * 240 + "_one.png", "c" * 240 + "_two.png"]  # 248 characters each
    for number, name in enumerate(names, start=1):
        (images / name).write_bytes(example_paths(number)[0].read_bytes())
    assert run(images, out) == 0
    outputs = [path.name for path in out.iterdir() if path.name != CSV_NAME]
    assert len(outputs) == 4 and all(len(name.encode()) <= 255 for name in outputs)
    assert [row["file"] for row in read_rows(out / CSV_NAME)] == names


def test_hidden_files_are_listed_as_skipped(folders, capsys):
    images, out = folders
    (images / ".hidden.png").write_bytes(example_paths(4)[0].read_bytes())
    assert main([str(images), str(out), "--model", str(BUNDLED_MODEL)]) == 0
    rows = read_rows(out / CSV_NAME)
    assert [(row["file"], row["status"]) for row in rows] == [
        (".hidden.png", "skipped: hidden file (name starts with a dot)"),
        *((name, "ok") for name in NAMES),
    ]
    assert "segmented 3 of 3 files" in capsys.readouterr().out
    assert not any(path.name.startswith(".") for path in out.iterdir())


def test_the_notes_of_each_image_are_printed_and_kept_in_the_csv(tmp_path, capsys):
    images, out = tmp_path / "in", tmp_path / "out"
    images.mkdir()
    grey = example_arrays(1)[0]
    byte = np.round(grey / grey.max() * 255).astype(np.uint8)
    alpha = np.full(byte.shape, 255, np.uint8)
    alpha[0, 0] = 128
    Image.fromarray(np.dstack([byte, byte, byte, alpha]), mode="RGBA").save(images / "alpha.png")
    Image.fromarray(255 - byte).save(images / "light.png")
    assert main([str(images), str(out), "--model", str(BUNDLED_MODEL)]) == 0
    err = capsys.readouterr().err
    assert "alpha.png: transparency (alpha channel) ignored" in err
    assert "light.png: light background detected: inverted so chromosomes are bright" in err
    notes = {row["file"]: row["notes"] for row in read_rows(out / CSV_NAME)}
    assert notes == {
        "alpha.png": "transparency (alpha channel) ignored",
        "light.png": "light background detected: inverted so chromosomes are bright",
    }


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        amfl.predict.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every file was segmented" in text
    assert f"{EXIT_FATAL} nothing was written" in text and "2 bad arguments" in text
    assert f"{EXIT_FAILED} some files failed" in text and "130 interrupted" in text


def test_a_killed_runs_temporaries_are_removed_and_a_live_writers_kept(folders):
    images, out = folders
    out.mkdir()
    stale, live = out / f"{TEMPORARY_PREFIX}0123456789ab.png", out / f"{TEMPORARY_PREFIX}ba9876543210.png"
    stale.write_bytes(b"half a PNG")
    live.write_bytes(b"being written")
    long_ago = time.time() - STALE_TEMPORARY_S - 5
    os.utime(stale, (long_ago, long_ago))
    assert run(images, out) == 0
    assert not stale.exists() and live.exists()


def test_an_output_path_that_is_a_file_is_a_clear_error(folders, capsys):
    images, out = folders
    out.write_text("not a folder")
    with pytest.raises(SystemExit) as stopped:
        run(images, out)
    assert stopped.value.code == 2 and f"output {out} exists and is not a folder" in capsys.readouterr().err
    assert out.read_text() == "not a folder"
