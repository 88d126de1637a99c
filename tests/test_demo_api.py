"""amfl.demo as API clients meet it: what sessions keep stays within its bound however many
requests come (every API call is a session of its own), numbers are checked before any work,
messages arrive as typed, the served config names the model without its server path, and
long file names give distinct downloads. First in process through the handlers, then
through gradio_client against a launched app, with a copy of the bundled trained model in a
folder only the server knows."""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.request
import warnings
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import amfl.demo as demo_module
from amfl.demo import (
    GONE, SESSION_CAPACITY, Page, build_demo, display_name, main, serve,
)
from amfl.demo_metaphase import DOWNLOAD_STEM_BYTES, GRADIO_NAME_BYTES
from amfl.demo_views import KEPT_SESSION_BYTES, KEPT_TOTAL_BYTES, Kept, KeptResults, PackedKept
from amfl.segmentation import Segmenter, analyse, limit_threads
from conftest import BUNDLED_MODEL, example_arrays, example_paths

#: Side of the large test image, pixels (1024 x 1024 takes 4 s on one busy core).
SIDE = 512
#: Requests of the bound tests, each from a session of its own.
REQUESTS = 8
#: What one SIDE x SIDE image with ground truth keeps unpacked: display, labels and truth, uint8.
KEPT_PER_IMAGE = 3 * SIDE * SIDE
#: The long upload names: 248 characters, the first 240 shared.
LONG_PREFIX = "p" * 240
OPACITY_MESSAGE = "The overlay opacity must be a number from 0 to 1 (the slider's range); got {}."


def held_bytes(value, seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays reachable from ``value`` through containers and dataclasses:
    the pixels that holding ``value`` keeps in memory, counted independently of the app."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(held_bytes(item, seen) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(held_bytes(item, seen) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(held_bytes(getattr(value, field.name), seen) for field in dataclasses.fields(value))
    slots = getattr(type(value), "__slots__", ())
    return sum(held_bytes(getattr(value, slot), seen) for slot in slots if hasattr(value, slot))


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("server-side") / "models" / "amfl-small-copy"
    shutil.copytree(BUNDLED_MODEL, folder)
    return folder


@pytest.fixture(scope="module")
def segmenter(model_folder):
    previous = torch.get_num_threads()
    limit_threads(1)
    yield Segmenter.from_pretrained(model_folder)
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def packed_per_image(segmenter, inputs) -> int:
    """What the store holds of the large image with its ground truth, packed."""
    return PackedKept(Kept.of(analyse(segmenter, inputs["large"], inputs["large_truth"]))).nbytes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("api-inputs")
    image, truth = example_arrays(1)
    paths = {
        "sample": folder / "sample.png",
        "large": folder / "large.png",
        "large_truth": folder / "large_label.png",
        "apostrophe": folder / "O'Brien's.png",
        "angles": folder / "a<b>.png",
        "binary_truth": folder / "binary.png",
        "long_a": folder / f"{LONG_PREFIX}aaaa.png",
        "long_b": folder / f"{LONG_PREFIX}bbbb.png",
    }
    for name in ("sample", "long_a", "long_b"):
        shutil.copy(example_paths(1)[0], paths[name])
    Image.fromarray(np.tile(image, (6, 6))[:SIDE, :SIDE]).save(paths["large"])
    Image.fromarray(np.tile(truth, (6, 6))[:SIDE, :SIDE]).save(paths["large_truth"])
    paths["apostrophe"].write_bytes(b"")
    paths["angles"].write_bytes(b"")
    Image.fromarray((truth > 0).astype(np.uint8) * 255).save(paths["binary_truth"])
    return {name: str(path) for name, path in paths.items()}


def spy_on(monkeypatch, segmenter) -> list[object]:
    """The images ``segmenter.segment`` is called with, from now on."""
    calls, segment = [], segmenter.segment
    monkeypatch.setattr(segmenter, "segment", lambda image: calls.append(image) or segment(image))
    return calls


def quietly(call, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args)


# --- In process, through the handlers --------------------------------------------------------


def test_a_result_keeps_uint8_pictures_not_the_float_image(segmenter, inputs):
    analysis = analyse(segmenter, inputs["large"], inputs["large_truth"])
    kept = Kept.of(analysis)
    assert held_bytes(analysis) == 6 * SIDE * SIDE  # float32 grey, labels, truth
    assert held_bytes(kept) == kept.nbytes == KEPT_PER_IMAGE
    assert all(array.dtype == np.uint8 for array in (kept.display, kept.labels, kept.truth))
    np.testing.assert_array_equal(kept.overlay(0.3), analysis.segmentation.overlay(0.3))
    np.testing.assert_array_equal(kept.cutouts()[1], analysis.segmentation.cutouts()[1])
    np.testing.assert_array_equal(kept.difference(), analysis.difference())
    assert kept.areas == analysis.segmentation.areas()


def test_a_packed_result_unpacks_to_the_same_pixels_in_fewer_bytes(segmenter, inputs):
    kept = Kept.of(analyse(segmenter, inputs["large"], inputs["large_truth"]))
    packed = PackedKept(kept)
    assert held_bytes(packed) == packed.nbytes < KEPT_PER_IMAGE / 4
    unpacked = packed.unpack()
    for field in ("display", "labels", "truth"):
        np.testing.assert_array_equal(getattr(unpacked, field), getattr(kept, field))
    assert unpacked.areas == kept.areas and unpacked.name == kept.name and unpacked.scores == kept.scores


def test_pixels_that_do_not_compress_are_held_raw_so_the_largest_image_always_fits():
    noise = np.random.default_rng(0).integers(0, 256, (300, 200), dtype=np.uint8)
    kept = Kept("noise.png", noise, noise % 4, None, {}, False, 0.1)
    packed = PackedKept(kept)
    assert packed.nbytes <= 2 * noise.size and packed.unpack().truth is None
    np.testing.assert_array_equal(packed.unpack().display, noise)


def test_the_bounds_hold_the_largest_image_and_four_sessions_of_it():
    assert KEPT_SESSION_BYTES == 3 * 4096 * 4096 == 48 * 2**20 and KEPT_TOTAL_BYTES == 4 * KEPT_SESSION_BYTES


def test_the_download_name_limit_is_gradios():
    import inspect

    from gradio_client.utils import strip_invalid_filename_characters

    limit = inspect.signature(strip_invalid_filename_characters).parameters["max_bytes"].default
    assert GRADIO_NAME_BYTES == limit and DOWNLOAD_STEM_BYTES == limit - len("_difference.png")


def test_sessions_hold_at_most_the_bound_however_many_requests(segmenter, inputs, packed_per_image):
    page = Page(segmenter, KeptResults(session_bytes=packed_per_image, total_bytes=3 * packed_per_image))
    tokens = []
    for _ in range(REQUESTS):  # each a new session, as API calls are
        views = quietly(page.segment, [inputs["large"]], [inputs["large_truth"]], 0.5)
        tokens.append(views.kept)  # what the session's gr.State holds
        assert isinstance(views.kept, str) and len(views.kept) < 100
        assert held_bytes(vars(page.kept)) <= 3 * packed_per_image
    assert held_bytes(vars(page.kept)) == page.kept.nbytes == 3 * packed_per_image
    assert [bool(page.kept.names(token)) for token in tokens] == [False] * (REQUESTS - 3) + [True] * 3
    gone = page.show(tokens[0], "large.png", 0.5)  # the oldest session is told, not broken
    assert gone.overlay is None and gone.notes == f"- {GONE}"


def test_a_session_replaces_its_batch_and_keeps_what_fits(segmenter, inputs):
    images = [inputs["sample"], inputs["long_a"], inputs["long_b"]]
    [size] = {PackedKept(Kept.of(analyse(segmenter, image))).nbytes for image in images}  # one picture
    page = Page(segmenter, KeptResults(session_bytes=2 * size, total_bytes=10**6))
    first = quietly(page.segment, images, None, 0.5)
    assert [name for name, _ in first.chooser.choices] == ["sample.png", f"{LONG_PREFIX}aaaa.png"]
    assert first.status.splitlines() == [
        "Segmented 3 of 3 images.",
        "- only the first 2 results can be shown here (the server keeps 48 MB of results a "
        "visitor); the table and the downloads have them all",
    ]
    assert len(first.table) == 3 and len(first.downloads) == 3 * 2 + 1
    second = quietly(page.segment, [inputs["sample"]], None, 0.5, first.kept)
    assert page.kept.names(first.kept) == [] and page.kept.nbytes == size
    assert second.status == "Segmented 1 of 1 images."


def test_results_are_dropped_after_their_time_and_when_gradio_deletes_the_state(segmenter, inputs):
    now = [0.0]
    kept = KeptResults(max_age_s=900, clock=lambda: now[0])
    token = quietly(Page(segmenter, kept).segment, [inputs["sample"]], None, 0.5).kept
    now[0] = 899.0
    assert kept.names(token) == ["sample.png"] and kept.find(token, "sample.png").name == "sample.png"
    now[0] = 901.0
    assert kept.names(token) == [] and kept.find(token, "sample.png") is None and kept.nbytes == 0
    demo = build_demo(segmenter, kept=kept)
    [state] = [block for block in demo.blocks.values() if isinstance(block, gr.State)]
    assert state.time_to_live == 900
    token = quietly(Page(segmenter, kept).segment, [inputs["sample"]], None, 0.5).kept
    state.delete_callback(token)  # what Gradio calls when it deletes the session's state
    assert kept.names(token) == []


def test_the_slider_redraws_the_value_reached_during_a_redraw(segmenter):
    """Gradio's default for .input drops events while one runs: the last key press is lost."""
    config = build_demo(segmenter).config
    opacity = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "opacity")
    [event] = [d for d in config["dependencies"] if (opacity, "input") in map(tuple, d["targets"])]
    assert event["trigger_mode"] == "always_last"


@pytest.mark.parametrize("opacity", [float("nan"), float("inf"), -0.5, 1.5, "0.5", None, True])
def test_a_bad_opacity_is_refused_before_any_segmentation(segmenter, inputs, monkeypatch, opacity):
    calls = spy_on(monkeypatch, segmenter)
    with pytest.raises(gr.Error) as caught:
        Page(segmenter).segment([inputs["sample"]], None, opacity)
    assert caught.value.message == OPACITY_MESSAGE.format(repr(opacity)) and calls == []
    with pytest.raises(gr.Error):
        Page(segmenter).recolour("", "sample.png", opacity)


def test_messages_keep_their_apostrophes_and_escape_only_markup(segmenter, inputs):
    with pytest.raises(gr.Error) as caught:
        Page(segmenter).segment([inputs["sample"]], None, float("nan"))
    assert "slider's range" in caught.value.message and "&#x27;" not in caught.value.message
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        views = Page(segmenter).segment([inputs["apostrophe"], inputs["angles"]], None, 0.5)
    assert views.status.splitlines()[1:] == [
        "- O'Brien's.png: the file is empty", "- a&lt;b&gt;.png: the file is empty",
    ]
    assert [str(warning.message) for warning in warned] == [
        "O'Brien's.png: the file is empty (and 1 more, listed on the page)"
    ]
    views = quietly(Page(segmenter).segment, [inputs["sample"]], [inputs["binary_truth"]], 0.5)
    assert "or the paper's colours; found values 255" in views.result.notes


def test_long_upload_names_give_distinct_downloads_that_gradio_serves_unchanged(segmenter, inputs):
    views = quietly(Page(segmenter).segment, [inputs["long_a"], inputs["long_b"]], [], 0.5)
    names = [Path(path).name for path in views.downloads]
    assert len(set(names)) == len(names) == 5
    assert all(len(name.encode()) <= GRADIO_NAME_BYTES for name in names)
    assert [name.rsplit("_", 1)[1] for name in names[:4]] == ["labels.png", "overlay.png"] * 2
    assert all(name.startswith("p" * (DOWNLOAD_STEM_BYTES - 9)) for name in names[:4])


def test_an_internal_error_does_not_show_the_upload_folder(segmenter, inputs, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(f"[Errno 5] Input/output error: '{inputs['sample']}'")

    monkeypatch.setattr(demo_module, "analyse", broken)
    views = quietly(Page(segmenter).segment, [inputs["sample"]], None, 0.5)
    assert views.status.splitlines()[1] == (
        "- sample.png: internal error (OSError: [Errno 5] Input/output error: 'sample.png')"
    )


def test_the_config_names_the_model_but_never_its_server_path(model_folder, monkeypatch):
    served = []
    monkeypatch.setenv("AMFL_MODEL", str(model_folder))
    monkeypatch.setattr(demo_module, "serve", served.append)
    previous = torch.get_num_threads()
    try:
        main()
    finally:
        torch.set_num_threads(previous)
    config = json.dumps(served[0].config, default=str)  # what /config serves
    assert str(model_folder.parents[1]) not in config and "models/amfl-small-copy" in config
    link = model_folder.parent / "current"
    link.symlink_to(model_folder)  # shown by the name given, not the link's target
    assert display_name(str(link)) == "models/current" and display_name("someone/amfl") == "someone/amfl"


# --- Through gradio_client, against a launched app -------------------------------------------


@pytest.fixture(scope="module")
def server(segmenter, packed_per_image):
    kept = KeptResults(session_bytes=packed_per_image, total_bytes=3 * packed_per_image)
    app = build_demo(segmenter, kept=kept)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield app, url, kept
    app.close()


#: Positions in the API's result (State outputs are left out): the status text, the downloads.
STATUS, DOWNLOADS = 1, 3


def call(url: str, images, truths, opacity):
    """One API call from a new client: a session of its own."""
    from gradio_client import Client, handle_file

    return Client(url, verbose=False).predict(
        [handle_file(path) for path in images], [handle_file(path) for path in truths] or None, opacity,
        api_name="/segment",
    )


def call_over_http(url: str, image: str, opacity: float) -> str:
    """One call of the plain HTTP API (curl's way; gradio_client cannot send a NaN): upload,
    post, then the event stream's text."""
    import httpx

    api = f"{url.rstrip('/')}/gradio_api"
    with open(image, "rb") as handle:
        [uploaded] = httpx.post(f"{api}/upload", files=[("files", (Path(image).name, handle))]).json()
    data = [[{"path": uploaded, "meta": {"_type": "gradio.FileData"}}], None, opacity]
    posted = httpx.post(f"{api}/call/segment", content=json.dumps({"data": data}),  # json allows NaN
                        headers={"content-type": "application/json"})
    return httpx.get(f"{api}/call/segment/{posted.json()['event_id']}", timeout=120).text


def test_api_sessions_hold_at_most_the_bound_however_many_calls(server, inputs, packed_per_image):
    app, url, kept = server
    assert app.state_holder.capacity == SESSION_CAPACITY <= 1000  # not Gradio's 10,000
    for _ in range(REQUESTS):
        assert call(url, [inputs["large"]], [inputs["large_truth"]], 0.5)[STATUS] == "Segmented 1 of 1 images."
        states = [session.state_data for session in app.state_holder.session_data.values()]
        assert held_bytes(states) == 0  # tokens only
        assert held_bytes(vars(kept)) <= 3 * packed_per_image
    assert len(app.state_holder.session_data) >= REQUESTS and kept.nbytes == 3 * packed_per_image


def test_api_a_nan_opacity_fails_with_its_message_before_any_work(server, inputs, segmenter, monkeypatch):
    calls = spy_on(monkeypatch, segmenter)
    events = call_over_http(server[1], inputs["sample"], float("nan"))
    assert events.startswith("event: error\ndata: ") and calls == []
    assert json.loads(events.split("data: ", 1)[1].splitlines()[0])["error"] == OPACITY_MESSAGE.format("nan")


def test_api_status_text_arrives_as_typed(server, inputs):
    status = call(server[1], [inputs["apostrophe"]], [], 0.5)[STATUS]
    assert status == "No image could be segmented.\n- O'Brien's.png: the file is empty"


def test_api_long_names_give_distinct_download_names(server, inputs):
    downloads = call(server[1], [inputs["long_a"], inputs["long_b"]], [], 0.5)[DOWNLOADS]
    names = [Path(path).name for path in downloads]
    assert len(set(names)) == len(names) == 5 and "results.csv" in names


def test_api_config_does_not_show_the_model_folder(server, model_folder):
    with urllib.request.urlopen(f"{server[1].rstrip('/')}/config", timeout=30) as response:
        config = response.read().decode()
    assert str(model_folder.parents[1]) not in config and "models/amfl-small-copy" in config
