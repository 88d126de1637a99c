"""Forwards a second of the eager network and of its trace, from several threads, with and
without a busy Python thread beside them: what the app's request threads see, where
Gradio's own Python work runs beside the forwards (``amfl/tracing.py`` says why).

    python benchmarks/bench_tracing.py                     # bundled model, 4 threads, 128 x 128
    python benchmarks/bench_tracing.py --model M --threads 8 --side 256 --seconds 5
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPOSITORY / "space" / "model"), help="model folder or Hub id")
    parser.add_argument("--threads", type=int, default=4, help="threads running forwards")
    parser.add_argument("--side", type=int, default=128, help="input side, pixels")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    return parser.parse_args()


def forwards_per_second(network: torch.nn.Module, batch: torch.Tensor, threads: int, seconds: float,
                        busy_python: bool) -> float:
    """Forwards completed per second by ``threads`` threads (one torch thread in all)."""
    stop, done, lock = time.monotonic() + seconds, [0], threading.Lock()

    def forwards() -> None:
        with torch.inference_mode():
            while time.monotonic() < stop:
                network(batch)
                with lock:
                    done[0] += 1

    def python_work() -> None:
        while time.monotonic() < stop:
            sum(value * value for value in range(2000))

    workers = [threading.Thread(target=forwards) for _ in range(threads)]
    workers += [threading.Thread(target=python_work)] if busy_python else []
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return done[0] / seconds


def main() -> int:
    args = parse_args()
    from amfl.segmentation import Segmenter, limit_threads

    limit_threads(1)
    segmenter = Segmenter.from_pretrained(args.model)
    if segmenter.whole_image_network is segmenter.model:
        print("this model is not traced (see the log): nothing to compare", file=sys.stderr)
        return 1
    batch = torch.rand(1, segmenter.model.in_channels, args.side, args.side)
    print(f"{args.model}, {args.threads} threads, {args.side} x {args.side}, torch {torch.__version__}")
    for name, network in (("eager", segmenter.model), ("traced", segmenter.whole_image_network)):
        with torch.inference_mode():
            for _ in range(3):
                network(batch)  # warm-up: allocator, the trace's optimisation passes
        alone = forwards_per_second(network, batch, args.threads, args.seconds, busy_python=False)
        beside = forwards_per_second(network, batch, args.threads, args.seconds, busy_python=True)
        print(f"{name:>6}: {alone:6.1f} forwards/s alone, {beside:6.1f} beside a busy Python thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
