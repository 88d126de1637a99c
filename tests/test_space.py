"""amfl.space: the shipped examples are remade by a command, and an assembled Space folder
starts on its own files and segments an image through its API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amfl.data.adir import default_adir_dir
from amfl.data.sources import SourceError
from amfl.demo import example_files
from amfl.space import (
    ADIR_EXAMPLES, EXAMPLES_LICENCE_FILE, METAPHASE_EXAMPLES, POMMIER_EXAMPLE, SPACE_FILES, assemble, main,
    write_examples,
)
from conftest import make_pairs

REPOSITORY = Path(__file__).resolve().parents[1]
#: Seconds the assembled app may take to start serving on 2 busy cores.
START_TIMEOUT_S = 120


def test_examples_are_16_bit_crops_with_their_labels_and_licence(tmp_path):
    pairs = make_pairs(5)
    write_examples(pairs, tmp_path / "examples", count=3)
    rows = example_files(tmp_path / "examples")
    assert len(rows) == 3
    (image,), (truth,) = rows[-1]
    with Image.open(image) as picture:
        assert picture.mode.startswith("I")  # 16-bit: overlap sums above 255 survive
        np.testing.assert_array_equal(np.asarray(picture), np.clip(pairs.images[4], 0, None))
    np.testing.assert_array_equal(np.asarray(Image.open(truth)), pairs.labels[4])
    licence = (tmp_path / "examples" / EXAMPLES_LICENCE_FILE).read_text()
    assert "Pommier" in licence and "0, 2, 4 of the test split" in licence


@pytest.fixture(scope="module")
def adir_dir() -> Path:
    folder = default_adir_dir()
    if not (folder / "SHA256SUMS").is_file():
        pytest.skip(f"the ADIR metaphases are not in {folder}; set AMFL_ADIR")
    return folder


def test_the_committed_examples_are_what_the_command_makes(built, source_dir, adir_dir, tmp_path):
    """space/examples must be reproducible: remake them from the rebuilt test split and the
    source metaphases."""
    from amfl.data.protocol import split_pairs

    made = tmp_path / "examples"
    write_examples(split_pairs(built.clean).test_scored, made, metaphases=(source_dir, adir_dir))
    shipped = REPOSITORY / "space" / "examples"
    written = sorted(path.relative_to(made) for path in made.rglob("*"))
    assert written == sorted(path.relative_to(shipped) for path in shipped.rglob("*"))
    assert Path(METAPHASE_EXAMPLES, "README.TXT") in written and Path(METAPHASE_EXAMPLES, POMMIER_EXAMPLE) in written
    for name in written:
        if name.suffix == ".png":
            np.testing.assert_array_equal(np.asarray(Image.open(made / name)), np.asarray(Image.open(shipped / name)))
        elif (made / name).is_file():
            assert (made / name).read_bytes() == (shipped / name).read_bytes(), name


def test_an_altered_metaphase_source_is_refused_and_the_examples_are_left_as_they_were(source_dir, adir_dir, tmp_path):
    copy = tmp_path / "adir"
    for name in (*ADIR_EXAMPLES, "SHA256SUMS", "README.TXT"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((adir_dir / name).read_bytes())
    write_examples(make_pairs(3), tmp_path / "examples", count=2, metaphases=(source_dir, copy))
    licence = tmp_path / "examples" / METAPHASE_EXAMPLES / "README.TXT"
    assert licence.read_bytes() == (copy / "README.TXT").read_bytes()
    before = sorted(path.name for path in (tmp_path / "examples").rglob("*"))
    with open(copy / ADIR_EXAMPLES[1], "ab") as handle:
        handle.write(b"x")
    with pytest.raises(SourceError, match=f"{Path(ADIR_EXAMPLES[1]).name}: missing, or not the published file"):
        write_examples(make_pairs(3), tmp_path / "examples", count=2, metaphases=(source_dir, copy))
    assert sorted(path.name for path in (tmp_path / "examples").rglob("*")) == before
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no staging left


def _fake_repository(folder: Path, without: str = "") -> Path:
    for name in (*SPACE_FILES, "space/README.md"):
        if name != without:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).mkdir() if "." not in name else (folder / name).write_text("x")
    return folder


def test_assemble_refuses_a_missing_part_and_its_own_folders(tmp_path):
    repository = _fake_repository(tmp_path / "incomplete", without="space/examples")
    with pytest.raises(FileNotFoundError, match="space/examples missing .*python -m amfl.space examples"):
        assemble(tmp_path / "out", repository=repository)
    repository = _fake_repository(tmp_path / "complete")
    with pytest.raises(ValueError, match="folder of its own"):
        assemble(repository / "amfl" / "space-build", repository=repository)
    assert (repository / "amfl").is_dir() and assemble(tmp_path / "out", repository=repository).is_dir()


def test_the_examples_command_without_source_images_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AMFL_CACHE", str(tmp_path / "cache"))
    assert main(["examples", str(tmp_path / "examples"), "--source", str(tmp_path / "nothing")]) == 1
    assert "DAPI.tif" in capsys.readouterr().err and not (tmp_path / "examples").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_server(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the assembled app exited: {process.communicate()[0]}")
        with socket.socket() as connection:
            if connection.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the assembled app did not listen on port {port} within {START_TIMEOUT_S} s")


def test_an_assembled_space_starts_on_its_own_files_and_segments_through_its_api(tmp_path):
    from gradio_client import Client, handle_file

    from amfl.segmentation import Segmenter

    space = assemble(tmp_path / "space")
    assert (space / "README.md").read_text().startswith("---\ntitle:")
    assert all((space / name).exists() for name in SPACE_FILES)
    environment = {key: value for key, value in os.environ.items() if key not in ("AMFL_MODEL", "PYTHONPATH")}
    probe = subprocess.run([sys.executable, "-c", "import amfl; print(amfl.__file__)"], cwd=space,
                           env=environment, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(space), "the Space must run its own copy of amfl"
    port = _free_port()
    environment.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_server(process, port)
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        example = space / "space" / "examples" / "example_1.png"
        truth = space / "space" / "examples" / "example_1_label.png"
        result = client.predict([handle_file(str(example))], [handle_file(str(truth))], 0.5, api_name="/segment")
    finally:
        process.terminate()
        process.wait(timeout=30)
    status, table = result[1], result[2]
    assert status == "Segmented 1 of 1 images."
    row = dict(zip(table["headers"], table["data"][0], strict=True))
    expected = Segmenter.from_pretrained(space / "space" / "model").segment(example).areas()
    assert {name: row[f"area_{name}_px"] for name in expected} == expected
    assert row["dice_percent"] > 80
