"""train_accelerate.py --h5 against a corpus of damaged files, each generated in ``tmp_path``:
every one is refused with exit code 2 and one ``error:`` line that names the file, says what
is wrong and what was expected, without a traceback, and before anything is written to
--output_dir (a new one is not created, a previous run's files stay as they were)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from amfl.data.h5 import read_h5
from conftest import make_pairs

REPO = Path(__file__).resolve().parents[1]
RAW, CLEAN = "dataset_1", "13434_overlapping_chrom_pairs_LowRes"
TINY = ["--model", "amfl-small", "--base_width", "4", "--discriminator_width", "8",
        "--batch_size", "8", "--max_samples", "24", "--quiet", "--epochs", "1"]
#: Exit code of train_accelerate.py for bad input (and of argparse for bad options).
BAD_INPUT = 2


def _cli_module():
    spec = importlib.util.spec_from_file_location("train_accelerate", REPO / "train_accelerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_accelerate = _cli_module()


def stacked(count: int = 40, dtype=np.int64) -> np.ndarray:
    """(count, 94, 93, 2) grey + labels 0-3 of synthetic pairs, as the published files store them."""
    return make_pairs(count).stacked().astype(dtype)


def h5_file(path: Path, **datasets) -> Path:
    """An HDF5 file holding ``datasets`` (a None value makes a group of that name)."""
    with h5py.File(path, "w") as handle:
        for name, array in datasets.items():
            if array is None:
                handle.create_group(name)
            else:
                handle.create_dataset(name, data=array)
    return path


def with_value(dtype, sample: int, channel: int, value, count: int = 40) -> np.ndarray:
    array = stacked(count, dtype)
    array[sample, 40, 40, channel] = value
    return array


def truncated(path: Path) -> Path:
    h5_file(path, **{CLEAN: stacked()})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def without_overlap() -> np.ndarray:
    array = stacked()
    array[..., 1][array[..., 1] == 3] = 1
    return array


def scaled_to_unit() -> np.ndarray:
    array = stacked(dtype=np.float64)
    array[..., 0] /= 400.0
    return array


#: name -> (make the file in a folder, extra options, what the message must say).
CORPUS: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "text file": (lambda d: (d / "pairs.h5").write_text("grey,label\n1,2\n") and d / "pairs.h5", [],
                  r"not a readable HDF5 file: it has no HDF5 signature"),
    "empty file": (lambda d: (d / "pairs.h5").write_bytes(b"") or d / "pairs.h5", [], r"it is empty \(0 bytes\)"),
    "truncated file": (lambda d: truncated(d / "pairs.h5"), [], r"damaged or truncated \(.*truncated file"),
    "images and labels as separate datasets": (
        lambda d: h5_file(d / "pairs.h5", images=stacked()[..., 0], labels=stacked()[..., 1]), [],
        rf"expected a dataset named {RAW} or {CLEAN}, found images, labels; that dataset holds \(N, H, W, 2\)"),
    "no dataset at all": (lambda d: h5_file(d / "pairs.h5"), [], r"found nothing"),
    "a group where the dataset belongs": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: None}), [],
                                          rf"{CLEAN} is a group, not a dataset"),
    "grey only, no label channel": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: stacked()[..., :1]}), [],
                                    r"has shape \(40, 94, 93, 1\), expected \(N, H, W, 2\)"),
    "2-D dataset (N, 94)": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: stacked()[:, :, 0, 0]}), [],
                            r"has shape \(40, 94\), expected \(N, H, W, 2\)"),
    "3-D dataset (N, 94, 93)": (lambda d: h5_file(d / "pairs.h5", **{RAW: stacked()[..., 0]}), [],
                                r"has shape \(40, 94, 93\), expected \(N, H, W, 2\)"),
    "5-D dataset": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: stacked()[..., None]}), [],
                    r"has shape \(40, 94, 93, 2, 1\), expected \(N, H, W, 2\)"),
    "zero samples": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: stacked()[:0]}), [],
                     r"has shape \(0, 94, 93, 2\), expected \(N, H, W, 2\) with N > 0"),
    "float images holding NaN": (
        lambda d: h5_file(d / "pairs.h5", **{CLEAN: with_value(np.float32, 7, 0, np.nan)}), [],
        r"non-finite grey value \(nan\) in sample 7; expected whole numbers"),
    "float images scaled to 0..1": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: scaled_to_unit()}), [],
                                    r"fractional grey value \(.*\) in sample 0; expected whole numbers: grey levels"),
    "float labels holding NaN": (
        lambda d: h5_file(d / "pairs.h5", **{RAW: with_value(np.float64, 3, 1, np.nan)}), [],
        r"non-finite label value \(nan\) in sample 3"),
    "fractional float labels": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: with_value(np.float64, 2, 1, 1.5)}), [],
                                r"fractional label value \(1.5\) in sample 2"),
    "label 7": (lambda d: h5_file(d / "pairs.h5", **{RAW: with_value(np.int64, 9, 1, 7)}), [],
                r"holds label 7 in sample 9; label values must lie in 0..4"),
    "negative label": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: with_value(np.int64, 1, 1, -1)}), [],
                       r"holds label -1 in sample 1; label values must lie in 0..3"),
    "label 4 in the cleaned dataset": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: with_value(np.int64, 0, 1, 4)}), [],
                                       rf"holds label 4 in sample 0; expected labels 0-3 only in the cleaned dataset {CLEAN}"),
    "raw label 4 with --raw_labels": (lambda d: h5_file(d / "pairs.h5", **{RAW: with_value(np.int64, 0, 1, 4, 300)}),
                                      ["--raw_labels"], r"split holds labels 0..4; expected labels 0..3.*without --raw_labels"),
    "grey beyond int16": (lambda d: h5_file(d / "pairs.h5", **{RAW: with_value(np.int64, 4, 0, 10**6)}), [],
                          r"holds grey value 1e\+06 in sample 4, outside int16"),
    "strings": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: np.full((4, 94, 93, 2), b"ab")}), [],
                r"has dtype \|S2, expected whole numbers"),
    "booleans": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: stacked().astype(bool)}), [], r"has dtype bool"),
    "no overlap to score": (lambda d: h5_file(d / "pairs.h5", **{CLEAN: without_overlap()}), [],
                            r"no samples in the validation, test split\(s\); expected at least one .*overlap pixels"),
    "path that does not exist": (lambda d: d / "absent.h5", [], r"file not found; expected an HDF5 file"),
    "directory": (lambda d: (d / "folder.h5").mkdir() or d / "folder.h5", [], r"is a directory, not a file"),
}


def case_file(tmp_path: Path, case: str) -> tuple[Path, list[str], str]:
    make, extra, message = CORPUS[case]
    folder = tmp_path / "data"
    folder.mkdir()
    return make(folder), extra, message


def folder_snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``folder``: its bytes (None for a folder) and modification time."""
    return {
        str(path.relative_to(folder)): (None if path.is_dir() else path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


def previous_run(folder: Path) -> dict:
    """A previous run's output folder (config, log, TensorBoard events, a checkpoint)."""
    (folder / "amfl").mkdir(parents=True)
    (folder / "checkpoints" / "epoch_0003").mkdir(parents=True)
    (folder / "training_config.json").write_text(json.dumps({"epochs": 3}) + "\n")
    (folder / "log.jsonl").write_text('{"epoch": 3}\n')
    (folder / "amfl" / "events.out.tfevents.1.host").write_bytes(b"\x00events")
    (folder / "checkpoints" / "epoch_0003" / "trainer_state.json").write_text('{"epochs_done": 3}\n')
    return folder_snapshot(folder)


def assert_clear_error(text: str, path: Path, message: str) -> None:
    """One ``error:`` line naming ``path``, saying ``message`` and what was expected."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    assert str(path) in lines[0] and "expected" in lines[0], lines[0]
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("case", list(CORPUS))
def test_damaged_h5_is_refused_before_anything_is_written(tmp_path, capsys, case):
    path, extra, message = case_file(tmp_path, case)
    output = tmp_path / "run"
    code = train_accelerate.main([*TINY, *extra, "--h5", str(path), "--output_dir", str(output)])
    assert code == BAD_INPUT
    assert_clear_error(capsys.readouterr().err, path, message)
    assert not output.exists(), sorted(output.rglob("*"))


@pytest.mark.parametrize("case", ["float images holding NaN", "path that does not exist"])
def test_refused_run_leaves_a_previous_runs_folder_as_it_was(tmp_path, capsys, case):
    path, extra, message = case_file(tmp_path, case)
    output = tmp_path / "run"
    before = previous_run(output)
    assert train_accelerate.main([*TINY, *extra, "--h5", str(path), "--output_dir", str(output)]) == BAD_INPUT
    assert_clear_error(capsys.readouterr().err, path, message)
    assert folder_snapshot(output) == before


def test_resume_without_a_checkpoint_leaves_the_folder_as_it_was(tmp_path, capsys):
    path = h5_file(tmp_path / "pairs.h5", **{CLEAN: stacked(300)})
    output = tmp_path / "run"
    before = previous_run(output)
    (output / "checkpoints" / "epoch_0003" / "trainer_state.json").unlink()  # incomplete checkpoint
    before = folder_snapshot(output)
    code = train_accelerate.main([*TINY, "--resume", "--h5", str(path), "--output_dir", str(output)])
    assert code == BAD_INPUT
    assert "--resume: no complete checkpoint" in capsys.readouterr().err
    assert folder_snapshot(output) == before


def test_float_files_with_whole_values_are_read_as_stored(tmp_path):
    """The leniency the checks keep: a float copy of a published file loses nothing."""
    exact = stacked(5)
    pairs, cleaned = read_h5(h5_file(tmp_path / "pairs.h5", **{CLEAN: exact.astype(np.float32)}), progress=False)
    assert cleaned
    np.testing.assert_array_equal(pairs.images, exact[..., 0])
    np.testing.assert_array_equal(pairs.labels, exact[..., 1])


@pytest.mark.parametrize("case", ["text file", "a group where the dataset belongs"])
def test_the_cli_exits_2_with_one_error_line_and_no_traceback(tmp_path, case):
    from test_training import run_cli

    path, extra, message = case_file(tmp_path, case)
    output = tmp_path / "run"
    result = run_cli([*TINY, *extra, "--h5", str(path), "--output_dir", str(output)])
    assert result.returncode == BAD_INPUT, result.stderr[-3000:]
    assert_clear_error(result.stderr, path, message)
    assert not output.exists()
