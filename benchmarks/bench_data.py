"""Time the dataset rebuild (target: under 2 minutes on 2 cores) and a cached reload
(target: under 2 seconds). Prints the figures; builds into a temporary cache.

    python benchmarks/bench_data.py [--source DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from amfl.data.dataset import build_dataset, load_rebuilt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None, help="folder with DAPI.tif and Cy3.tif")
    parser.add_argument("--repeats", type=int, default=3, help="cached reloads to time (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "pairs.npz"
        result = build_dataset(args.source, cache, progress=False)
        print(f"cores: {os.cpu_count()}, samples: {len(result.clean):,}")
        print(f"build (rebuild + cleaning + compressed cache): {result.seconds:.1f} s")
        print(f"cache size: {cache.stat().st_size / 1e6:.1f} MB")
        reloads = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            load_rebuilt(cache_path=cache, progress=False)
            reloads.append(time.perf_counter() - started)
        print(f"cached reload: median {statistics.median(reloads):.2f} s, max {max(reloads):.2f} s")


if __name__ == "__main__":
    main()
