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

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "space" / "examples"


def example_images() -> list[Path]:
    """The bundled example crops (their label maps left out)."""
    return sorted(path for path in EXAMPLES.glob("example_*.png") if not path.stem.endswith("_label"))


def time_segmenter(source: str, runtime: str, threads: int, passes: int) -> tuple[str, float, int]:
    """(the runtime that ran, median ms per image, images timed), in this process."""
    from amfl.reading import read_grey
    from amfl.segmentation import Segmenter, limit_threads

    limit_threads(threads)
    segmenter = Segmenter.from_pretrained(source, runtime=runtime)
    greys = [read_grey(path)[0] for path in example_images()]
    for grey in greys:  # warm-up: first calls allocate
        segmenter.segment_grey(grey)
    milliseconds = []
    for _ in range(passes):
        for grey in greys:
            started = time.perf_counter()
            segmenter.segment_grey(grey)
            milliseconds.append(1000 * (time.perf_counter() - started))
    return segmenter.runtime, statistics.median(milliseconds), len(milliseconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(ROOT / "space" / "model")], help="model folders or Hub ids")
    parser.add_argument("--runtime", nargs="+", choices=RUNTIMES, default=list(RUNTIMES), help="runtimes to time, in this order")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime CPU threads (the app's default is 1)")
    parser.add_argument("--passes", type=int, default=25, help="timed passes over the examples")
    args = parser.parse_args()
    if not example_images():
        parser.error(f"no example_*.png in {EXAMPLES}: make them with python -m amfl.space examples space/examples")
    context = multiprocessing.get_context("spawn")
    for source in args.model:
        for runtime in args.runtime:
            with context.Pool(1) as pool:
                ran, milliseconds, count = pool.apply(time_segmenter, (source, runtime, args.threads, args.passes))
            asked = runtime if ran == runtime else f"{runtime}, fell back to {ran}"
            print(f"{source} ({asked}): median {milliseconds:.2f} ms per crop, whole path "
                  f"({count} calls over the {len(example_images())} examples, {args.threads} CPU threads)")


if __name__ == "__main__":
    main()
