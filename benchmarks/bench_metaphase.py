"""Time per metaphase of the whole-metaphase mode (``amfl.metaphase.analyse_metaphase``):
median over N ADIR metaphases (evenly spread over the sorted list), model included.

    python benchmarks/bench_metaphase.py                      # 10 metaphases, 1 thread
    python benchmarks/bench_metaphase.py --metaphases 124 --threads 2
    python benchmarks/bench_metaphase.py --runtime torch       # the network in torch, not the app's auto

The goal is under 2 s per 517 x 645 metaphase on a 2-core CPU. Each metaphase is timed once
after one untimed warm-up run (the first call pays for the model's first forward).
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from amfl.data.adir import list_metaphases
from amfl.metaphase import analyse_metaphase
from amfl.onnx_runtime import AUTO, RUNTIME_SETTINGS
from amfl.segmentation import Segmenter, limit_threads

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "space" / "model"
GOAL_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder or Hub id")
    parser.add_argument("--metaphases", type=int, default=10, help="how many metaphases to time")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime CPU threads (the app's default is 1)")
    parser.add_argument("--runtime", choices=RUNTIME_SETTINGS, default=AUTO,
                        help="what runs the network on each crop (default: the app's, auto)")
    args = parser.parse_args()
    threads = limit_threads(args.threads)
    segmenter = Segmenter.from_pretrained(args.model, runtime=args.runtime)
    metaphases = list_metaphases(verify=False)
    chosen = [metaphases[i] for i in np.unique(np.linspace(0, len(metaphases) - 1, max(args.metaphases, 1)).round().astype(int))]
    analyse_metaphase(chosen[0].read()[0], segmenter)
    seconds, calls, shapes = [], [], set()
    for metaphase in chosen:
        dapi, _ = metaphase.read()
        started = time.perf_counter()
        result = analyse_metaphase(dapi, segmenter)
        seconds.append(time.perf_counter() - started)
        calls.append(result.model_calls)
        shapes.add(dapi.shape)
    median = statistics.median(seconds)
    print(
        f"whole-metaphase mode: median {median:.2f} s per metaphase (min {min(seconds):.2f}, max {max(seconds):.2f}) "
        f"over {len(chosen)} metaphases of {sorted(shapes)}, {threads} CPU thread(s), network in {segmenter.runtime}, "
        f"median {statistics.median(calls):.0f} model calls each; goal under {GOAL_S:.0f} s: "
        f"{'met' if median < GOAL_S else 'not met'}"
    )


if __name__ == "__main__":
    main()
