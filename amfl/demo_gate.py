"""The app's lane for large images: one at a time, and only a few waiting, so that small
requests always find a free worker.

The page's Segment event runs up to ``amfl.demo.CONCURRENCY_LIMIT`` requests side by side.
A request holding an image larger than ``amfl.segmentation.LARGE_IMAGE_PIXELS`` (1024 x
1024 once padded to the network size; tiled by ``amfl.tiling``) runs inside
:meth:`LargeImageGate.admit`: it waits there, holding a worker but no memory or CPU, while
another large request runs; when ``waiting`` large requests already wait, it is refused at
once with :class:`LaneFull`. So large requests hold at most ``1 + waiting`` of the workers
and the rest stay free for small ones. The one large request running runs at a lower CPU
priority (:func:`at_low_priority`), so small requests do not share the CPU with it evenly
but go first. Whether a request is large is read from the files' headers
(:func:`declared_shape`) before any pixel is decoded. After a large request, and whenever
the last request in flight ends, the C heap's free memory goes back to the system
(:func:`amfl.memory.release_free_memory`), so the server shrinks again once a load is over.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from amfl.memory import release_free_memory
from amfl.reading import MAX_SIDE, declared_shape

T = TypeVar("T")

#: Large requests that may wait while one runs; more are refused until one finishes.
LARGE_WAITING = 2
#: Niceness added to the thread that runs a large request (Linux schedules threads by their
#: own niceness): small requests take the CPU first while a large one runs.
LARGE_NICENESS = 10
#: What a refused large request is told.
BUSY_MESSAGE = ("The server is busy with other large images (over 1024 x 1024 pixels, segmented one "
                "at a time): press Segment again in a minute, or crop or downscale the image.")


class LaneFull(RuntimeError):
    """Too many large requests already running and waiting; try again later."""


class LargeImageGate:
    """At most one large request running and ``waiting`` more waiting, process-wide when
    shared (the app uses the module's :data:`LARGE_IMAGES`)."""

    def __init__(self, waiting: int = LARGE_WAITING) -> None:
        if waiting < 0:
            raise ValueError(f"the number of waiting large requests must be >= 0, got {waiting}")
        self.waiting = waiting
        self._running = threading.BoundedSemaphore(1)
        self._admitted = threading.BoundedSemaphore(1 + waiting)
        self._count_lock = threading.Lock()
        self._count = 0
        self._in_flight = 0

    @property
    def admitted(self) -> int:
        """Large requests running or waiting now."""
        with self._count_lock:
            return self._count

    def _add(self, change: int) -> None:
        with self._count_lock:
            self._count += change

    @contextmanager
    def admit(self, large: bool) -> Iterator[None]:
        """Run the block now if not ``large``; else after the large request before it, or
        raise :class:`LaneFull` at once if ``waiting`` already wait."""
        if not large:
            yield
            return
        if not self._admitted.acquire(blocking=False):
            raise LaneFull(f"{self.waiting + 1} large images are already being processed or waiting")
        self._add(1)
        try:
            with self._running:
                yield
        finally:
            self._add(-1)
            self._admitted.release()

    @property
    def in_flight(self) -> int:
        """Requests of any size inside :meth:`run` now."""
        with self._count_lock:
            return self._in_flight

    def run(self, large: bool, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` within :meth:`admit`; a large request's at low priority
        (:func:`at_low_priority`), so that small ones run first. :func:`release_free_memory`
        follows a large request, and any request that leaves none in flight: the worker
        threads' malloc arenas otherwise keep what a burst of requests freed."""
        with self._count_lock:
            self._in_flight += 1
        try:
            with self.admit(large):
                return at_low_priority(function, *args) if large else function(*args)
        finally:
            with self._count_lock:
                self._in_flight -= 1
                idle = self._in_flight == 0
            if large or idle:
                release_free_memory()


#: The app's gate: one large image at a time in this process.
LARGE_IMAGES = LargeImageGate()


def at_low_priority(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a thread of its own, ``LARGE_NICENESS`` nicer than the
    caller's (where the system allows; otherwise at the same priority), with the caller's
    context variables (Gradio's request context); returns its result or raises its error.
    A thread of its own, because an unprivileged process cannot make a thread less nice
    again, and the server's worker threads must keep their priority for small requests."""
    context, outcome = contextvars.copy_context(), {}

    def run() -> None:
        try:
            thread = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + LARGE_NICENESS)
        except (AttributeError, OSError):  # not Linux, or not allowed: same priority
            pass
        try:
            outcome["result"] = context.run(function, *args)
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    worker = threading.Thread(target=run, name="amfl-large-image", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def any_large(paths: Iterable[str], is_large: Callable[[tuple[int, int]], bool]) -> bool:
    """Whether any of the image files ``paths`` declares a size ``is_large`` calls large.
    Files whose size cannot be read, or that are over the reader's limit, are not large: the
    reader refuses them at once with its own message."""
    for path in paths:
        shape = declared_shape(path)
        if shape is not None and max(shape) <= MAX_SIDE and is_large(shape):
            return True
    return False
