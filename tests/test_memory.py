"""amfl.memory: the server's threads share a few malloc arenas, and free memory goes back.
Checked in a child process, which glibc's malloc_info describes arena by arena."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from amfl.memory import release_free_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

#: Eight threads each allocate, then the arenas are counted from malloc_info's XML.
COUNT_ARENAS = """
import ctypes, sys, threading
from amfl.memory import limit_malloc_arenas
if sys.argv[1] != "default":
    assert limit_malloc_arenas(int(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
started, hold = threading.Barrier(9), threading.Event()
def allocate():
    blocks = [libc.malloc(4096) for _ in range(64)]
    started.wait()
    hold.wait()
    for block in blocks:
        libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()
report = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
hold.set()
for thread in threads:
    thread.join()
print(open(sys.argv[2]).read().count("<heap nr="))
"""


def arenas(setting: str, tmp_path) -> int:
    done = subprocess.run([sys.executable, "-c", COUNT_ARENAS, setting, str(tmp_path / "malloc.xml")],
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout)


def test_threads_share_the_arenas_the_limit_allows(tmp_path):
    assert arenas("2", tmp_path) <= 2 < arenas("default", tmp_path)


#: A thread fills 200 MB of 100 kB blocks (below malloc's mmap threshold, so in its arena),
#: frees all but every 20th, and the resident memory is read before and after the release.
FRAGMENT_AND_RELEASE = """
import ctypes, threading
from amfl.memory import release_free_memory
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
kept = []
def fragment():
    blocks = [libc.malloc(100_000) for _ in range(2000)]
    for block in blocks:
        ctypes.memset(block, 1, 100_000)
    for index, block in enumerate(blocks):
        (kept.append if index % 20 == 0 else libc.free)(block)
thread = threading.Thread(target=fragment)
thread.start()
thread.join()
before = resident_mb()
release_free_memory()
print(before, resident_mb())
"""


def test_free_memory_held_by_a_threads_arena_goes_back_to_the_system():
    done = subprocess.run([sys.executable, "-c", FRAGMENT_AND_RELEASE], capture_output=True, text=True,
                          timeout=60, check=True)
    before, after = map(float, done.stdout.split())
    assert before - after > 100, (before, after)
