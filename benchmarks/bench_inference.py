"""Inference latency of a model folder: median of N forward passes, batch 1, 128 x 128, CPU.

The model is prepared as the app prepares it (``amfl.segmentation.inference_ready``: eval mode,
batch norms folded into the convolutions, channels-last layout, weights in the chosen
precision); ``--plain`` times it as loaded, for comparison. ``--runtime`` picks what runs it:
eager torch (the paper's way, the default), the TorchScript trace or ONNX Runtime, as the
app's ``amfl.segmentation.Segmenter`` runs whole images (``amfl.onnx_runtime``).

    python benchmarks/bench_inference.py                    # the bundled default (space/model)
    python benchmarks/bench_inference.py --model runs/amfl/model --runs 50 --threads 2
    python benchmarks/bench_inference.py --model space/model runs/real-image-v1/model --threads 2
    python benchmarks/bench_inference.py --precision float32 bfloat16 --threads 2
    python benchmarks/bench_inference.py --precision auto --threads 2   # the format the app picks here
    python benchmarks/bench_inference.py --runtime eager torchscript onnxruntime --threads 2

With several folders or precisions, each is timed in turn in the same process, so they are
compared on the same machine under the same load.
"""

import argparse
from pathlib import Path

import torch
from torch import nn

import amfl.hub
from amfl.models.precision import PRECISIONS, SETTINGS, choose_precision
from amfl.onnx_runtime import OnnxNetwork
from amfl.segmentation import Segmenter, inference_ready
from amfl.timing import median_ms

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "space" / "model"
GOAL_MS = 25.0
#: What can run the network: torch operator by operator, the trace the app runs whole images
#: through in torch, or ONNX Runtime.
RUNTIMES = ("eager", "torchscript", "onnxruntime")


def network_to_time(loaded: nn.Module, precision: str, runtime: str, plain: bool) -> tuple[nn.Module | OnnxNetwork, str]:
    """The network ``runtime`` runs and how it was prepared; for the trace and ONNX Runtime,
    the whole-image network of a Segmenter, with the runtime it fell back to if it did."""
    if plain:
        return loaded.eval(), "as loaded"
    if runtime == RUNTIMES[0]:
        return inference_ready(loaded, precision), "inference_ready, eager"
    segmenter = Segmenter(loaded, precision=precision, runtime="onnxruntime" if runtime == RUNTIMES[2] else "torch")
    network = segmenter.whole_image_network
    ran = segmenter.runtime if segmenter.runtime == RUNTIMES[2] else (
        RUNTIMES[1] if isinstance(network, torch.jit.ScriptModule) else "eager: the trace was refused")
    return network, f"inference_ready, {ran}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(DEFAULT_MODEL)], help="model folders or Hub ids")
    parser.add_argument("--runs", type=int, default=50, help="timed forward passes")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--size", type=int, default=128, help="image height and width")
    parser.add_argument("--precision", nargs="+", choices=SETTINGS, default=[PRECISIONS[0]],
                        help="number formats to time the network in (amfl.models.precision; auto: the app's default)")
    parser.add_argument("--runtime", nargs="+", choices=RUNTIMES, default=[RUNTIMES[0]],
                        help="what runs the network: eager torch, its TorchScript trace, ONNX Runtime")
    parser.add_argument("--plain", action="store_true", help="time the model as loaded (NCHW layout, float32)")
    args = parser.parse_args()
    if args.plain and (args.precision != [PRECISIONS[0]] or args.runtime != [RUNTIMES[0]]):
        parser.error("--plain times the model as loaded, in float32 and eager torch; drop --precision and --runtime")
    if args.threads:
        torch.set_num_threads(args.threads)
    for source in args.model:
        loaded = amfl.hub.from_pretrained(source)
        parameters = sum(parameter.numel() for parameter in loaded.parameters())
        for setting in args.precision:
            precision = choose_precision(setting)
            named = precision if setting == precision else f"{setting}: {precision}"
            for runtime in args.runtime:
                try:
                    network, prepared = network_to_time(loaded, precision, runtime, args.plain)
                except ValueError as error:
                    print(f"{source} ({runtime}, {named}): not timed: {error}")
                    continue
                image = torch.rand(1, 1, args.size, args.size)
                with torch.inference_mode():
                    milliseconds = median_ms(lambda: network(image), runs=args.runs)
                print(
                    f"{source} ({prepared}, {named}): "
                    f"{parameters / 1e6:.3f} M parameters; median {milliseconds:.2f} ms per {args.size} x {args.size} "
                    f"image (batch 1, {torch.get_num_threads()} CPU threads, {args.runs} runs; goal under {GOAL_MS:.0f} ms)"
                )


if __name__ == "__main__":
    main()
