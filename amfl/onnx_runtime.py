"""The network run by ONNX Runtime for whole-image inference, checked against the network.

Why: ONNX Runtime optimises the whole graph ahead of time and runs it in its own CPU kernels,
which on this project's 2-core CPU took the bundled model's 128 x 128 forward under issue 13's
25 ms (24.5 ms on 2 threads, against 30.3 ms for the trace;
``benchmarks/bench_inference.py --runtime eager torchscript onnxruntime``,
``results/runtime/README.md``). Like the trace (:mod:`amfl.tracing`) its sessions run without
Python's GIL between operators.

The ONNX graph is exported in memory from the loaded network, whose weights were read from
safetensors, each time a :class:`amfl.segmentation.Segmenter` is built (about a second): no
ONNX file is ever read from a folder or the Hub, so a model folder holds nothing more to
trust. The session sums in another order than torch, so it is kept if its logits stay within
:data:`LOGIT_TOLERANCE` of the network's on inputs of two shapes (bit for bit is what the
trace is held to); otherwise the caller falls back to torch.
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import torch
from torch import nn

from amfl.models.precision import PRECISIONS
from amfl.tracing import check_inputs

#: Runtimes a Segmenter can run whole images in, the default first.
RUNTIMES = ("torch", "onnxruntime")
#: The app's default setting: ONNX Runtime where it is installed and can compute the chosen
#: precision (float32 only), torch otherwise.
AUTO = "auto"
#: Settings accepted by :func:`choose_runtime`.
RUNTIME_SETTINGS = (AUTO, *RUNTIMES)
#: Largest difference of any logit from the network's that the session may make on the
#: check inputs (0-1 images). The bundled model's differ by under 1e-4.
LOGIT_TOLERANCE = 1e-3
#: The packages the runtime needs: ``onnx`` to export, ``onnxruntime`` to run.
PACKAGES = ("onnx", "onnxruntime")
#: The exporter's operator set: opset 17 covers every operator of the NestedUNet.
OPSET = 17


def onnxruntime_installed() -> bool:
    """Whether both :data:`PACKAGES` can be imported."""
    return all(importlib.util.find_spec(package) is not None for package in PACKAGES)


def check_runtime(setting: str, origin: str = "") -> str:
    """``setting`` if it is one of :data:`RUNTIME_SETTINGS`; else a ValueError naming them
    (and ``origin``, where the setting came from, e.g. " (from AMFL_RUNTIME)")."""
    if setting not in RUNTIME_SETTINGS:
        raise ValueError(f"unknown runtime {setting!r}{origin}; choose one of {', '.join(RUNTIME_SETTINGS)}")
    return setting


def choose_runtime(setting: str, precision: str, device: torch.device = torch.device("cpu")) -> str:
    """The runtime a ``setting`` names for a network computing in ``precision`` on ``device``.
    :data:`AUTO` is ``onnxruntime`` on a CPU in float32 where it is installed, else ``torch``;
    asking for ``onnxruntime`` where it cannot run is a ValueError that says why."""
    if check_runtime(setting) == RUNTIMES[0]:
        return setting
    obstacle = (
        "" if onnxruntime_installed() else f"it is not installed (pip install {' '.join(PACKAGES)})",
        "" if precision == PRECISIONS[0] else f"it computes {PRECISIONS[0]} only, not {precision}",
        "" if device.type == "cpu" else f"it runs on the CPU only, not {device.type}",
    )
    reasons = "; ".join(reason for reason in obstacle if reason)
    if not reasons:
        return RUNTIMES[1]
    if setting == AUTO:
        return RUNTIMES[0]
    raise ValueError(f"cannot run the network in onnxruntime: {reasons}")


class OnnxNetwork:
    """Callable as the network is: a (N, C, H, W) float32 tensor in, its logits out."""

    def __init__(self, session) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.logits(batch.detach().cpu().numpy()))

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The logits of a (N, C, H, W) float32 array, without a torch operator on the way."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(images, np.float32)})[0]


def onnx_network(model: nn.Module, in_channels: int, divisor: int) -> OnnxNetwork:
    """``model`` (eval mode, float32, on the CPU; (N, in_channels, H, W) in with H and W
    multiples of ``divisor``) as an ONNX Runtime session with torch's current thread count.
    A RuntimeError if the export fails or the session's logits differ from the model's by
    more than :data:`LOGIT_TOLERANCE` on an input of another shape."""
    import onnxruntime

    example, check = check_inputs(in_channels, divisor, torch.device("cpu"))
    graph = io.BytesIO()
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation and tracer notes
            torch.onnx.export(
                model, (example,), graph, dynamo=False, opset_version=OPSET, input_names=["images"],
                output_names=["logits"], dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}},
            )
    except Exception as error:
        raise RuntimeError(f"the ONNX export failed ({type(error).__name__}: {error})") from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # ONNX Runtime's CPU arena keeps the largest image's buffers for good: 1,763 MB resident
    # after one 1024 x 1024 image, against 439 MB in torch (benchmarks/bench_memory.py)
    options.enable_cpu_mem_arena = False
    network = OnnxNetwork(onnxruntime.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"]))
    with torch.inference_mode():
        difference = max(float((network(images) - model(images)).abs().max()) for images in (check, example))
    if not np.isfinite(difference) or difference > LOGIT_TOLERANCE:
        raise RuntimeError(f"its logits differ from the network's by {difference:.2g} (over {LOGIT_TOLERANCE:g})")
    return network
