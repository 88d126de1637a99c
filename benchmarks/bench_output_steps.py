"""Time of a model's steps on the way out (``Preprocessor.finish``) per real pair crop, CPU.

The network's forward is timed by ``bench_inference.py``; what the app adds after it (small
parts dropped, stray overlaps merged, cut pieces renamed, naming) depends on the label map,
so it is timed here on the network's own labels of the real validation pairs (ADIR, raw and
masked crops): the network runs once per crop untimed, then each model's saved steps run on
every map ``--runs`` times, and the median per crop is printed beside the naming alone.

    python benchmarks/bench_output_steps.py --model space/model models/amfl-small-w16-free-interp
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from amfl.data.adir import list_metaphases
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.sources import SourceError
from amfl.preprocessing import Preprocessor
from amfl.real_scoring import REAL_INPUTS
from amfl.segmentation import Segmenter, limit_threads

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "space" / "model"


def median_finish_ms(output: Preprocessor, maps: list[np.ndarray], seen: list[np.ndarray], runs: int) -> float:
    """Median milliseconds of ``output.finish`` on one map, over every map and run."""
    times = []
    for _ in range(runs):
        for labels, image in zip(maps, seen, strict=True):
            start = time.perf_counter()
            output.finish(labels, image)
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(DEFAULT_MODEL)], help="model folders or Hub ids")
    parser.add_argument("--runs", type=int, default=5, help="timed passes over all crops")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the untimed network")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be 1 or more; got {args.runs}")
    limit_threads(args.threads)
    try:
        pairs = extract_real_pairs(list_metaphases(None), progress=False).select(split="validation")
    except (SourceError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    greys = [getattr(pair, kind).astype(np.float32) for pair in pairs for kind in REAL_INPUTS]
    for source in args.model:
        saved = Segmenter.from_pretrained(source)
        steps = saved.preprocessor
        network_only = Segmenter(saved.model, source, steps.without_output_steps(naming="network"))
        maps = [network_only.segment_grey(grey).labels for grey in greys]
        seen = [steps.prepare(grey[None]).unpadded()[0] for grey in greys]
        naming_only = steps.without_output_steps()
        print(f"{source}: saved output steps median {median_finish_ms(steps, maps, seen, args.runs):.2f} ms per crop, "
              f"naming alone {median_finish_ms(naming_only, maps, seen, args.runs):.2f} ms "
              f"({len(maps)} real validation crops, {args.runs} runs)")


if __name__ == "__main__":
    main()
