"""amfl.demo_gate: large images go one at a time and a few wait, so a small request is
answered while large ones run, in the handlers and through the real server. The slow large
image is a fake (``amfl.demo.analyse`` patched to wait for an event), so nothing sleeps
longer than the polling needs."""

from __future__ import annotations

import contextvars
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import amfl.demo as demo_module
import amfl.demo_gate as gate_module
from amfl.demo import CONCURRENCY_LIMIT, Page, build_demo, serve
from amfl.demo_gate import (
    BUSY_MESSAGE, LARGE_IMAGES, LARGE_NICENESS, LARGE_WAITING, LaneFull, LargeImageGate, any_large,
    at_low_priority, declared_shape,
)
from amfl.segmentation import analyse
from conftest import example_arrays

#: Seconds any wait in these tests may take before it counts as a hang.
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A small example crop and a large (1100 x 1100, mostly empty) image, as PNG."""
    folder = tmp_path_factory.mktemp("gate")
    small, large = folder / "small.png", folder / "large.png"
    Image.fromarray(example_arrays(1)[0]).save(small)
    Image.fromarray(np.zeros((1100, 1100), np.uint8)).save(large)
    return {"small": str(small), "large": str(large)}


class SlowLarge:
    """Stands in for ``amfl.demo.analyse``: a large image waits for ``release`` (counting
    how many are inside at once), then is analysed as the small one; others run as usual."""

    def __init__(self, small: str) -> None:
        self.small, self.release = small, threading.Event()
        self.inside = self.most_inside = 0
        self.lock = threading.Lock()

    def __call__(self, segmenter, image, truth=None, name=None):
        if Path(image).name != "large.png":
            return analyse(segmenter, image, truth, name)
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            assert self.release.wait(TIMEOUT_S), "the test never released the large image"
            return analyse(segmenter, self.small, None, Path(image).name)
        finally:
            with self.lock:
                self.inside -= 1


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_sizes_are_read_from_the_headers_and_only_accepted_large_ones_count(images, tmp_path):
    tifffile.imwrite(tmp_path / "wide.tif", np.zeros((16, 2000), np.uint16))
    Image.fromarray(np.zeros((10, 5000), np.uint8)).save(tmp_path / "over_the_limit.png")
    (tmp_path / "notes.png").write_text("not a picture")
    assert declared_shape(images["large"]) == (1100, 1100) and declared_shape(tmp_path / "wide.tif") == (16, 2000)
    assert declared_shape(tmp_path / "notes.png") is None and declared_shape(tmp_path / "missing.png") is None
    is_large = lambda shape: shape[0] * shape[1] > 1024 * 1024  # noqa: E731
    assert any_large([images["small"], images["large"]], is_large)
    others = [images["small"], tmp_path / "wide.tif", tmp_path / "over_the_limit.png", tmp_path / "notes.png"]
    assert not any_large([str(path) for path in others], is_large)


def test_one_large_request_runs_at_a_time_and_past_the_waiting_ones_the_next_is_refused():
    gate, inside, most, lock = LargeImageGate(waiting=1), [0], [0], threading.Lock()
    release = threading.Event()

    def large():
        with gate.admit(True):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait(TIMEOUT_S)
            with lock:
                inside[0] -= 1

    first = threading.Thread(target=large)
    first.start()
    wait_until(lambda: inside[0] == 1, "the first large request to run")
    second = threading.Thread(target=large)
    second.start()
    wait_until(lambda: gate.admitted == 2, "the second large request to wait")
    with pytest.raises(LaneFull), gate.admit(True):
        pass
    with gate.admit(False):  # a small one never waits
        assert inside[0] == 1
    release.set()
    first.join(TIMEOUT_S)
    second.join(TIMEOUT_S)
    assert most[0] == 1 and gate.admitted == 0


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_large_request_runs_in_a_nicer_thread_of_its_own_with_the_callers_context():
    """Small requests go first on the CPU; the worker thread keeps its own priority (an
    unprivileged process could not restore it), and Gradio's request context comes along."""
    request = contextvars.ContextVar("request")
    request.set("the caller's")
    caller, seen = niceness(), {}

    def large(value):
        seen.update(niceness=niceness(), request=request.get(), thread=threading.get_native_id(), value=value)
        return "done"

    assert at_low_priority(large, 7) == "done" and niceness() == caller
    assert seen == {"niceness": min(19, caller + LARGE_NICENESS), "request": "the caller's",
                    "thread": seen["thread"], "value": 7}
    assert seen["thread"] != threading.get_native_id()
    with pytest.raises(ZeroDivisionError):
        at_low_priority(lambda: 1 / 0)


def test_a_small_request_is_answered_while_a_large_one_runs(bundled_segmenter, images, monkeypatch):
    slow = SlowLarge(images["small"])
    monkeypatch.setattr(demo_module, "analyse", slow)
    page = Page(bundled_segmenter, gate=LargeImageGate())
    done = {}
    large = threading.Thread(target=lambda: done.update(views=page.segment([images["large"]], None, 0.5)))
    large.start()
    try:
        wait_until(lambda: slow.inside == 1, "the large image to start")
        assert page.segment([images["small"]], None, 0.5).status == "Segmented 1 of 1 images."
        assert large.is_alive() and not done
    finally:
        slow.release.set()
        large.join(TIMEOUT_S)
    assert done["views"].status == "Segmented 1 of 1 images."


def test_through_the_server_small_requests_pass_large_ones_that_fill_their_lane(bundled_segmenter, images, monkeypatch):
    """One large request running and LARGE_WAITING waiting hold 3 of the 8 workers: a small
    request is still answered, and one more large request is refused with a message."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    assert CONCURRENCY_LIMIT > 1 + LARGE_WAITING
    slow = SlowLarge(images["small"])
    monkeypatch.setattr(demo_module, "analyse", slow)
    app = build_demo(bundled_segmenter)
    _, url, _ = serve(app, server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        large = [client.submit([handle_file(images["large"])], None, 0.5, api_name="/segment")
                 for _ in range(1 + LARGE_WAITING)]
        wait_until(lambda: LARGE_IMAGES.admitted == 1 + LARGE_WAITING and slow.inside == 1, "the lane to fill")
        small = client.submit([handle_file(images["small"])], None, 0.5, api_name="/segment")
        assert small.result(timeout=TIMEOUT_S)[1] == "Segmented 1 of 1 images."
        with pytest.raises(AppError, match="busy with other large images"):
            client.predict([handle_file(images["large"])], None, 0.5, api_name="/segment")
        assert not any(job.done() for job in large)
    finally:
        slow.release.set()
        statuses = [job.result(timeout=TIMEOUT_S)[1] for job in large]
        app.close()
    assert statuses == ["Segmented 1 of 1 images."] * (1 + LARGE_WAITING)
    assert slow.most_inside == 1 and LARGE_IMAGES.admitted == 0
    assert "1024 x 1024" in BUSY_MESSAGE


def test_free_memory_is_released_after_a_large_request_and_when_the_last_request_leaves(monkeypatch):
    """A burst of small requests leaves their freed buffers in the worker threads' malloc
    arenas; the server gives them back once no request is in flight."""
    releases, gate = [], LargeImageGate()
    monkeypatch.setattr(gate_module, "release_free_memory", lambda: releases.append(gate.in_flight))
    entered, release = threading.Event(), threading.Event()

    def held():
        entered.set()
        release.wait(TIMEOUT_S)

    first = threading.Thread(target=gate.run, args=(False, held))
    first.start()
    entered.wait(TIMEOUT_S)
    assert gate.run(False, lambda: "small") == "small" and releases == []  # one still in flight
    release.set()
    first.join(TIMEOUT_S)
    assert releases == [0] and gate.in_flight == 0
    with pytest.raises(ZeroDivisionError):
        gate.run(False, lambda: 1 / 0)
    assert releases == [0, 0] and gate.in_flight == 0  # a failure leaves too
    assert gate.run(True, lambda: "large") == "large" and releases == [0, 0, 0]
