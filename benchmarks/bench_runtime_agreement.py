"""Do torch and ONNX Runtime label the same pixels? Every pixel of a model's label maps, both ways.

The app runs whole images in ONNX Runtime where it can (``amfl.onnx_runtime``), while the
model cards' scores come from torch. ONNX Runtime sums in another order, so its logits differ
by about 1e-4; this counts the pixels where that changes a label, on the Pommier test crops
and on every real ADIR pair (raw and masked crops, all case splits: nothing is scored or
chosen here). No differing pixel means the card's scores are the app's.

    python benchmarks/bench_runtime_agreement.py --model space/model --threads 2
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

import amfl.hub
from amfl.data.adir import list_metaphases
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.sources import SourceError
from amfl.evaluate import load_test_pairs
from amfl.real_scoring import REAL_INPUTS
from amfl.segmentation import Segmenter, limit_threads

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "space" / "model"


def crop_sets(max_samples: int | None) -> dict[str, list[np.ndarray]]:
    """Name -> grey crops: the Pommier test crops, then each input of the real pairs."""
    sets = {"Pommier test": list(load_test_pairs(None, 123, max_samples).images)}
    try:
        real = extract_real_pairs(list_metaphases(None), progress=False).select()
    except SourceError as error:
        print(f"note: real pairs skipped: {error}", file=sys.stderr)
        return sets
    for source in REAL_INPUTS:
        sets[f"real pairs, {source}"] = [getattr(pair, source) for pair in real[:max_samples]]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder or Hub id")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: $AMFL_THREADS, else 1, as the app)")
    parser.add_argument("--max_samples", type=int, default=None, help="at most this many crops of each set")
    args = parser.parse_args()
    limit_threads(args.threads)
    network = amfl.hub.from_pretrained(args.model)
    preprocessor = amfl.hub.load_preprocessor(args.model, network)
    segmenters = [Segmenter(network, args.model, preprocessor, runtime=runtime) for runtime in ("torch", "onnxruntime")]
    if segmenters[1].runtime != "onnxruntime":
        raise SystemExit("error: the model does not run in onnxruntime here (see the warning above)")
    for name, crops in crop_sets(args.max_samples).items():
        pixels = differing = images = 0
        for crop in tqdm(crops, desc=name, leave=False):
            torch_labels, onnx_labels = (segmenter.segment_grey(crop.astype(np.float32)).labels for segmenter in segmenters)
            changed = int((torch_labels != onnx_labels).sum())
            pixels, differing, images = pixels + torch_labels.size, differing + changed, images + bool(changed)
        print(f"{args.model}, {name}: {len(crops)} crops, {pixels:,} pixels; labels differ at {differing} pixels "
              f"in {images} crops (torch against onnxruntime)")


if __name__ == "__main__":
    main()
