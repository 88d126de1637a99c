"""The C heap of a long-running server: fewer malloc arenas, and free memory given back.

glibc gives each thread that allocates its own arena, up to eight per core, and an arena
keeps what its thread freed. The app serves requests in many threads, so after a burst its
memory stayed well above where it started: a quarter more in ``benchmarks/bench_load.py``
(16 users and two 4096 x 4096 images on 2 cores) with glibc's default arenas; with two, a
compressed result store and fewer sessions kept (``amfl.demo``), 4 % more
(``results/reliability/``). Other C libraries: both calls do nothing.
"""

from __future__ import annotations

import ctypes
import os

#: ``mallopt``'s parameter number for the most arenas (glibc's malloc.h).
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def limit_malloc_arenas(arenas: int | None = None) -> bool:
    """Let threads created from now on share at most ``arenas`` malloc arenas (default: one
    per core, at least two). Call it at start, before the server's threads exist. True where
    the C library took the setting (glibc)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas or max(2, os.cpu_count() or 1)))


def release_free_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). torch frees a large image's tiles into malloc's arenas, which keep them: two
    2048 x 2048 images left a process 745 MB larger, 22 MB once trimmed (``bench_memory``'s
    image). A few milliseconds."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
