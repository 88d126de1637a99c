"""python -m amfl.predict --metaphase INPUT_DIR OUTPUT_DIR: per image the instance maps,
overlay, gallery and CSVs, one results.csv row with the chromosome count; an image that is
not a metaphase fails alone (exit status 3), with the reason. Synthetic metaphases built
here, and one real ADIR metaphase when the data is there."""

from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

import amfl.predict
from amfl.data.adir import list_metaphases
from amfl.metaphase import analyse_metaphase
from amfl.metaphase_outputs import METAPHASE_SUFFIXES, read_instance_layers
from amfl.predict import CSV_NAME, EXIT_FAILED, EXIT_OK, EXIT_USAGE, HIDDEN_STATUS, OK, main
from amfl.segmentation import Segmenter
from conftest import BUNDLED_MODEL, skip_without_adir

pytestmark = pytest.mark.usefixtures("restore_threads")

SHAPE = (200, 260)
#: Six rods and two that cross, (row, column) ends, drawn 9 px thick: 8 chromosomes.
RODS = [((40, 30), (80, 55)), ((110, 25), (112, 85)), ((150, 40), (180, 90)), ((35, 120), (60, 165)),
        ((160, 130), (170, 200)), ((60, 200), (110, 230)), ((80, 110), (140, 170)), ((80, 170), (140, 110))]
SPECKS = [(15, 240), (190, 10)]


def synthetic_metaphase(seed: int) -> np.ndarray:
    """uint8: bright rods (brighter where two cross) and specks on a dark, uneven, noisy background."""
    rng = np.random.default_rng(seed)
    signal = np.zeros(SHAPE, np.float32)
    for (r0, c0), (r1, c1) in RODS:
        rod = np.zeros(SHAPE, np.uint8)
        cv2.line(rod, (c0, r0), (c1, r1), 1, 9)
        signal += 105 * rod
    for row, column in SPECKS:
        cv2.circle(signal, (column, row), 1, 150.0, -1)
    background = 15 + 30 * np.arange(SHAPE[1], dtype=np.float32) / SHAPE[1]
    image = background + cv2.GaussianBlur(signal, (0, 0), 1.5) + 3 * rng.standard_normal(SHAPE).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def outputs_of(stem: str) -> set[str]:
    return {f"{stem}{suffix}" for suffix in METAPHASE_SUFFIXES}


@pytest.fixture
def folders(tmp_path):
    """Two metaphases (a 16-bit TIFF, an RGB PNG), two images that are not metaphases (dark,
    tiny), a hidden file; an older run's overlay of the dark one in the output folder."""
    images, out = tmp_path / "in", tmp_path / "out"
    images.mkdir(), out.mkdir()
    tifffile.imwrite(images / "one.tif", synthetic_metaphase(0).astype(np.uint16) * 200)
    Image.fromarray(np.dstack([synthetic_metaphase(1)] * 3)).save(images / "two.png")
    Image.fromarray(np.full(SHAPE, 12, np.uint8)).save(images / "dark.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(images / "tiny.png")
    Image.fromarray(synthetic_metaphase(2)).save(images / ".hidden.png")
    (out / "dark_overlay.png").write_bytes(b"an older run's overlay")
    return images, out


def test_a_folder_of_metaphases_is_counted_and_bad_images_fail_alone(folders, capsys):
    images, out = folders
    code = main(["--metaphase", str(images), str(out), "--model", str(BUNDLED_MODEL), "--threads", "1"])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert {path.name for path in out.iterdir()} == outputs_of("one") | outputs_of("two") | {CSV_NAME}
    rows = read_rows(out / CSV_NAME)
    assert [(row["file"], row["status"]) for row in rows] == [
        (".hidden.png", HIDDEN_STATUS),
        ("dark.png", "failed: no chromosomes found: the image has no foreground"),
        ("one.tif", OK),
        ("tiny.png", "failed: a metaphase of 5 x 5 pixels is too small (at least 8 x 8)"),
        ("two.png", OK),
    ]
    one, two = rows[2], rows[4]
    segmenter = Segmenter.from_pretrained(BUNDLED_MODEL)
    for row, seed in ((one, 0), (two, 1)):  # the RGB one read as grey, as crop mode reads it
        expected = analyse_metaphase(synthetic_metaphase(seed), segmenter)
        assert int(row["chromosome_count"]) == expected.count == len(RODS)
        assert (row["width_px"], row["height_px"]) == ("260", "200")
        assert int(row["set_aside_debris"]) == len(SPECKS) and row["set_aside_nucleus"] == "0"
        assert int(row["flagged_for_review"]) == sum(c.review for c in expected.chromosomes)
        assert float(row["seconds"]) > 0
    assert rows[1]["chromosome_count"] == "" and rows[3]["chromosome_count"] == ""
    first, overlap = read_instance_layers(out, "one")
    assert first.shape == SHAPE and set(np.unique(first)) == set(range(len(RODS) + 1))
    assert overlap[110, 140] > 0 and overlap[110, 140] != first[110, 140]  # the crossing holds two
    assert len(read_rows(out / "one_chromosomes.csv")) == len(RODS)
    assert [row["kind"] for row in read_rows(out / "one_set_aside.csv")] == ["debris"] * len(SPECKS)
    assert f"one.tif: {len(RODS)} chromosomes (" in captured.out and "set aside: 2 debris" in captured.out
    assert f"two.png: {len(RODS)} chromosomes (" in captured.out
    assert "failed dark.png: no chromosomes found" in captured.err and "failed tiny.png: a metaphase" in captured.err
    assert "Traceback" not in captured.err and "5/5" not in captured.err and "4/4" in captured.err
    assert "analysed 2 of 4 files" in captured.out and "1 hidden file skipped" in captured.out


@pytest.mark.parametrize("option", [["--truth", "."], ["--opacity", "0.3"]], ids=["truth", "opacity"])
def test_crop_mode_options_are_refused_with_metaphase(folders, capsys, option):
    images, out = folders
    with pytest.raises(SystemExit) as stopped:
        amfl.predict.parse_args(["--metaphase", str(images), str(out), *option])
    assert stopped.value.code == EXIT_USAGE
    assert f"{option[0]} is not supported with --metaphase" in capsys.readouterr().err


def test_help_tells_of_the_metaphase_mode(capsys):
    with pytest.raises(SystemExit):
        amfl.predict.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--metaphase" in text and "x_instances_overlap.png" in text and "x_gallery.png" in text


#: A training-split metaphase that tests/test_metaphase.py counts (46, ISCN 46), through the
#: command line: reading the file the CLI's way must not change the count beyond this.
REAL_METAPHASE, REAL_TOLERANCE = "V1605XX", 3


def test_a_real_metaphase_is_counted_near_its_iscn_count(tmp_path, capsys):
    skip_without_adir()
    [metaphase] = [m for m in list_metaphases(verify=False) if m.name == REAL_METAPHASE]
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(metaphase.dapi_path, images)
    code = main(["--metaphase", str(images), str(tmp_path / "out"), "--model", str(BUNDLED_MODEL), "--quiet", "--threads", "1"])
    assert code == EXIT_OK and capsys.readouterr().out == ""  # --quiet: no summary lines
    [row] = read_rows(tmp_path / "out" / CSV_NAME)
    assert row["status"] == OK and abs(int(row["chromosome_count"]) - metaphase.expected_count) <= REAL_TOLERANCE
    assert int(row["set_aside_nucleus"]) >= 1
