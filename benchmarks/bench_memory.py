"""Peak memory (RSS) of segmenting one image of each size, each in a fresh process.

torch allocates outside Python's allocator, so tracemalloc sees little of it; each size is
segmented in a subprocess of its own instead, which reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after loading the model and warming it up
on a 128 x 128 image (the baseline), after segmenting the image (the peak), and what it
still holds then (the resident set, ``/proc/self/statm``): what a long-running app keeps. The
image is a grid of crossing chromosome-like bands (``benchmarks/bench_app.py``'s picture), uint16.

    python benchmarks/bench_memory.py                          # 512 1024 2048 4096, tiled
    python benchmarks/bench_memory.py --sides 512 1024 --model space/model
    python benchmarks/bench_memory.py --sides 2048 --untiled   # one forward of the whole image
    python benchmarks/bench_memory.py --precision bfloat16     # the network in bfloat16
    python benchmarks/bench_memory.py --runtime onnxruntime    # whole images in ONNX Runtime

Sides above 1024 are segmented in tiles (``amfl.tiling``) unless ``--untiled``; ``--untiled``
at 4096 needs about 10 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from amfl.models.precision import PRECISIONS
from amfl.onnx_runtime import RUNTIMES

#: The app's bundled model, used without --model and $AMFL_MODEL.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "space" / "model"
CELL = 128


def crossing_cell(size: int = CELL, shift: int = 0) -> np.ndarray:
    """uint16 cell: two bright bands crossing at an angle, overlap brighter, dark background;
    ``shift`` moves the crossing (so different seeds give different label maps)."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    columns -= shift
    first = (np.abs(rows * 0.3 + columns) < 5) & (np.abs(rows) < 40)
    second = (np.abs(rows - columns * 0.6) < 5) & (np.abs(columns) < 40)
    return (first * 180 + second * 160).astype(np.uint16)


def synthetic_image(side: int, seed: int = 0) -> np.ndarray:
    """(side, side) uint16: crossing cells side by side, each moved by a seeded offset."""
    rng = np.random.default_rng(seed)
    cells = -(-side // CELL)
    rows = [np.hstack([crossing_cell(shift=int(rng.integers(-20, 21))) for _ in range(cells)]) for _ in range(cells)]
    return np.vstack(rows)[:side, :side]


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def rss_mb() -> float:
    """Resident set size of this process now, MB (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 1e6


def child(side: int, model: str, untiled: bool, threads: int, precision: str, runtime: str) -> None:
    """Segment one ``side`` x ``side`` image and print what it cost as JSON."""
    import amfl.hub
    from amfl.segmentation import Segmenter, limit_threads
    from amfl.tiling import Tiling

    limit_threads(threads)
    network = amfl.hub.from_pretrained(model)
    segmenter = Segmenter(network, model, amfl.hub.load_preprocessor(model, network),
                          Tiling(above_pixels=2**62) if untiled else None, precision, runtime)
    segmenter.segment_grey(synthetic_image(CELL).astype(np.float32))
    image = synthetic_image(side).astype(np.float32)
    baseline = max_rss_mb()
    started = time.perf_counter()
    result = segmenter.segment_grey(image)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "side": side, "tiled": segmenter.is_large(image.shape), "baseline_mb": baseline,
        "peak_mb": max_rss_mb(), "held_mb": rss_mb(), "seconds": seconds, "chromosome_px": int((result.labels > 0).sum()),
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder or Hub id")
    parser.add_argument("--untiled", action="store_true", help="one forward of the whole image")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the app: 1)")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[0],
                        help="number format of the network (the app's AMFL_PRECISION)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=RUNTIMES[0],
                        help="what runs whole images (the app's AMFL_RUNTIME; tiles always run in torch)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.model, args.untiled, args.threads, args.precision, args.runtime)
        return 0
    print(f"model {args.model} ({args.precision}, {args.runtime}), {args.threads} thread(s), "
          f"{'untiled' if args.untiled else 'tiled above 1024 x 1024'}")
    print(f"{'side':>6} {'path':>7} {'baseline MB':>12} {'peak MB':>9} {'added MB':>9} {'held MB':>8} {'seconds':>8}")
    for side in args.sides:
        command = [sys.executable, __file__, "--child", str(side), "--model", args.model, "--threads", str(args.threads),
                   "--precision", args.precision, "--runtime", args.runtime]
        done = subprocess.run(command + (["--untiled"] if args.untiled else []), capture_output=True, text=True)
        if done.returncode:
            print(f"{side:>6} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        path = "tiled" if row["tiled"] else "whole"
        print(f"{side:>6} {path:>7} {row['baseline_mb']:>12.0f} {row['peak_mb']:>9.0f} "
              f"{row['peak_mb'] - row['baseline_mb']:>9.0f} {row['held_mb']:>8.0f} {row['seconds']:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
