"""Latency of one crop's whole path in the app: ``Segmenter.segment_grey`` (preprocessing, the
network, the output steps), median over the bundled examples, per runtime.

``bench_inference.py`` times the network alone; this times what a user waits for per crop,
where torch operators run between two forwards. Each runtime runs in a fresh process, so the
idle threads of one cannot slow the other.

    python benchmarks/bench_segment.py --runtime torch onnxruntime --threads 2
    python benchmarks/bench_segment.py --model space/model models/amfl-small-w16-masked-pieces --threads 1
"""

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path

from amfl.onnx_runtime import RUNTIMES
from amfl.space import EXAMPLE_PATTERN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "space" / "examples"


def time_segmenter(source: str, runtime: str, images: list[Path], threads: int, passes: int) -> tuple[str, float]:
    """(the runtime that ran, median ms per image over ``passes`` passes), in this process."""
    from amfl.reading import read_grey
    from amfl.segmentation import Segmenter, limit_threads

    limit_threads(threads)
    segmenter = Segmenter.from_pretrained(source, runtime=runtime)
    greys = [read_grey(path)[0] for path in images]
    for grey in greys:  # warm-up: first calls allocate
        segmenter.segment_grey(grey)
    milliseconds = []
    for _ in range(passes):
        for grey in greys:
            started = time.perf_counter()
            segmenter.segment_grey(grey)
            milliseconds.append(1000 * (time.perf_counter() - started))
    return segmenter.runtime, statistics.median(milliseconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(ROOT / "space" / "model")], help="model folders or Hub ids")
    parser.add_argument("--runtime", nargs="+", choices=RUNTIMES, default=list(RUNTIMES), help="runtimes to time, in this order")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime CPU threads (the app's default is 1)")
    parser.add_argument("--passes", type=int, default=25, help="timed passes over the examples")
    args = parser.parse_args()
    images = sorted(EXAMPLES.glob(EXAMPLE_PATTERN))
    if not images:
        parser.error(f"no {EXAMPLE_PATTERN} in {EXAMPLES}: make them with python -m amfl.space examples space/examples")
    context = multiprocessing.get_context("spawn")
    for source in args.model:
        for runtime in args.runtime:
            with context.Pool(1) as pool:
                ran, milliseconds = pool.apply(time_segmenter, (source, runtime, images, args.threads, args.passes))
            asked = runtime if ran == runtime else f"{runtime}, fell back to {ran}"
            print(f"{source} ({asked}): median {milliseconds:.2f} ms per crop, whole path "
                  f"({args.passes * len(images)} calls over the {len(images)} examples, {args.threads} CPU threads)")


if __name__ == "__main__":
    main()
