"""The bad-input corpus of tests/bad_inputs.py (empty, truncated, non-image, bombs, huge, tiny,
16-bit, float, NaN, multi-page, animated, RGBA, palette, CMYK, odd names) through both front
ends, each file with the outcome and message fragment of its one entry in ``CASES``: the
command line in process on one folder of the whole corpus (its ``results.csv`` row and its
stderr line), and the app through gradio_client in one request of the whole corpus (its
status text and table), plus one request for each readable file with notes (the app shows
the notes of the first result only). The app must say word for word what the command line
says, in plain text."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from amfl.demo import build_demo, serve
from amfl.predict import CSV_NAME, EXIT_FAILED, NOTE_SEPARATOR, OK, PARTIAL_CSV_NAME, main
from bad_inputs import CONTROL_NAME, CORPUS, LONG_NAME, Case, write_corpus
from conftest import BUNDLED_MODEL

#: Warnings the corpus may raise: none (the reader silences Pillow's for huge.png and refuses
#: the file in words). Any warning fails the tests.
KNOWN_WARNINGS: set[type[Warning]] = set()
#: Positions in the API's result of /segment (State outputs are left out).
STATUS, TABLE, DOWNLOADS, NOTES = 1, 2, 3, -1
NO_METRICS = "no ground truth given, so no metrics"


def served_name(name: str) -> str:
    """The name the app gets for an upload called ``name``: control characters and double
    quotes percent-encoded in the multipart form (HTML's form encoding, which httpx and
    browsers follow), then Gradio's cut to file-system-safe characters and 200 bytes."""
    from gradio_client.utils import strip_invalid_filename_characters

    encoded = "".join(f"%{ord(char):02X}" if ord(char) < 0x20 and char != "\x1b" or char == '"' else char
                      for char in name)
    return strip_invalid_filename_characters(encoded)


def present(name: str, written: dict[str, Case]) -> Case:
    if name not in written:
        pytest.skip(f"the file system refuses the name {name!r}")
    return written[name]


pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Case]]:
    """The folder of the corpus and its cases by name (those the file system takes)."""
    folder = tmp_path_factory.mktemp("corpus") / "in"
    return folder, {case.name: case for case in write_corpus(folder)}


# --- The command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str
    rows: dict[str, dict[str, str]]
    outputs: list[str]
    warned: list[warnings.WarningMessage]

    def failure_lines(self, name: str) -> list[str]:
        return [line for line in self.err.split("\n") if line.startswith(f"failed {name}: ")]


@pytest.fixture(scope="module")
def cli(corpus, tmp_path_factory) -> CliRun:
    """One run of the command line, in process, on the whole corpus folder."""
    folder, _ = corpus
    output = tmp_path_factory.mktemp("cli") / "out"
    out, err = io.StringIO(), io.StringIO()
    previous = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            code = main([str(folder), str(output), "--model", str(BUNDLED_MODEL), "--quiet"])
    finally:
        torch.set_num_threads(previous)
    with open(output / CSV_NAME, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    return CliRun(code, out.getvalue(), err.getvalue(), rows, sorted(path.name for path in output.iterdir()),
                  list(warned))


def test_the_cli_on_the_corpus_exits_3_with_one_stderr_line_per_failed_file(corpus, cli):
    _, written = corpus
    failed = [case for case in written.values() if not case.ok]
    ok = [case for case in written.values() if case.ok]
    assert failed and ok
    assert cli.code == EXIT_FAILED
    assert cli.out == ""  # --quiet
    assert "Traceback" not in cli.err and "Error:" not in cli.err
    lines = [line for line in cli.err.split("\n") if line]
    assert len(lines) == len(failed) and all(line.startswith("failed ") for line in lines)
    assert sorted(cli.rows) == sorted(written)
    assert {type(warning.message) for warning in cli.warned} <= KNOWN_WARNINGS
    # two pictures per segmented file, distinct even where names share a stem; no partial CSV
    assert len(cli.outputs) == 2 * len(ok) + 1 and CSV_NAME in cli.outputs and PARTIAL_CSV_NAME not in cli.outputs


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_cli_row_and_stderr_line_of_each_corpus_file(corpus, cli, name):
    case = present(name, corpus[1])
    row = cli.rows[name]
    lines = cli.failure_lines(name)
    if case.ok:
        assert row["status"] == OK and lines == []
        assert (int(row["height_px"]), int(row["width_px"])) == case.shape
        assert row["notes"] == NOTE_SEPARATOR.join(case.notes)
    else:
        [line] = lines
        reason = line[len(f"failed {name}: "):]
        assert case.error in reason and row["status"] == f"failed: {reason}"
        assert row["width_px"] == row["notes"] == ""


# --- The app's API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(bundled_segmenter):
    """A gradio_client Client of the app, launched in process on the bundled model."""
    from gradio_client import Client

    app = build_demo(bundled_segmenter)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        yield Client(url, verbose=False)
    finally:
        app.close()


def segment(client, paths) -> tuple:
    from gradio_client import handle_file

    return client.predict([handle_file(str(path)) for path in paths], None, 0.5, api_name="/segment")


@dataclass(frozen=True)
class AppRun:
    result: tuple
    #: The status text's line for each refused file, by corpus name.
    lines: dict[str, str]
    #: The table's row of each segmented file, by corpus name.
    rows: dict[str, dict[str, object]]
    warned: list[warnings.WarningMessage]


@pytest.fixture(scope="module")
def app(corpus, client) -> AppRun:
    """One request of the whole corpus; the status lines and the table rows come in upload
    order, and are matched to the corpus names by it (the app gets the names Gradio makes)."""
    folder, written = corpus
    cases = list(written.values())
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = segment(client, [folder / case.name for case in cases])
    problems = result[STATUS].split("\n")[1:]
    table = result[TABLE]
    rows = [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]
    failed = [case.name for case in cases if not case.ok]
    ok = [case.name for case in cases if case.ok]
    assert len(problems) == len(failed) and len(rows) == len(ok), result[STATUS]
    return AppRun(result, dict(zip(failed, problems)), dict(zip(ok, rows)), list(warned))


def test_the_app_on_the_corpus_segments_the_readable_files_and_lists_the_others(corpus, app):
    _, written = corpus
    ok = sum(case.ok for case in written.values())
    status = app.result[STATUS]
    assert status.split("\n")[0] == f"Segmented {ok} of {len(written)} images."
    assert "Traceback" not in status and "internal error" not in status
    assert html.unescape(status) == status and "&#" not in status  # plain text, no entities
    assert len(app.result[DOWNLOADS]) == 2 * ok + 1
    first = next(case for case in written.values() if case.ok)
    assert app.result[NOTES] == "\n".join(f"- {note}" for note in (*first.notes, NO_METRICS))
    # the server's own warnings (Gradio's pandas deprecations, sockets) are not the app's
    ours = [warning for warning in app.warned if "amfl" in Path(warning.filename).parts]
    assert not ours, [str(warning.message) for warning in ours]


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_app_says_of_each_corpus_file_what_the_cli_says(corpus, cli, app, client, name):
    case = present(name, corpus[1])
    shown = served_name(name)
    if case.ok:
        row = app.rows[name]
        assert row["file"] == shown and (row["height_px"], row["width_px"]) == case.shape
        assert row["width_px"] == int(cli.rows[name]["width_px"])
        if case.notes:  # shown for the first result of a request only
            notes = segment(client, [corpus[0] / name])[NOTES]
            assert notes == "\n".join(f"- {note}" for note in (*case.notes, NO_METRICS))
    else:
        line = app.lines[name]
        assert case.error in line
        assert line == f"- {shown}: {cli.rows[name]['status'].removeprefix('failed: ')}"


def test_the_app_shows_the_names_gradio_gives_odd_uploads(corpus):
    """What the app can know of a name: Gradio cuts it to 200 bytes and percent-encoded
    control characters stay encoded (the command line shows names as they are)."""
    _, written = corpus
    assert served_name("Métaphase 1 (copie).png") == "Métaphase 1 (copie).png"
    assert served_name("-x.png") == "-x.png"
    assert served_name(LONG_NAME) == LONG_NAME[:196] + ".png" and len(LONG_NAME) == 240
    if CONTROL_NAME in written:
        assert served_name(CONTROL_NAME) == "line%0Abreak%09tab.png"
