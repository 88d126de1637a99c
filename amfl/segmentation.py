"""Grey image in -> four-class label map at the image's own size, and what follows from it.

:class:`Segmenter` holds a loaded model with the preprocessing saved beside its weights
(:class:`amfl.preprocessing.Preprocessor`, the same steps training applied), so the app, the
command line and ``amfl.evaluate`` prepare inputs exactly as the model was trained to see
them. :func:`analyse` adds a ground truth and the paper's scores.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amfl.metrics import NUM_CLASSES, score_batch
from amfl.models.folding import fold_batch_norms
from amfl.models.precision import AUTO, PRECISIONS, choose_precision, in_precision
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.onnx_runtime import RUNTIME_SETTINGS, RUNTIMES, OnnxNetwork, check_runtime, choose_runtime, onnx_network
from amfl.pictures import difference_image, overlay, stretch_to_uint8
from amfl.preprocessing import Preprocessor
from amfl.reading import InputError, read_grey, read_ground_truth, to_grey
from amfl.tiling import Tiling, tiled_labels, whole_image_grid
from amfl.tracing import traced_network

logger = logging.getLogger(__name__)

#: Images of more pixels than this, once padded to the network size, are large: the network
#: runs on them in overlapping tiles (:mod:`amfl.tiling`), and the app segments one at a time.
#: One forward of a whole 4096 x 4096 image took 9.5 GB in amfl-small; tiled, the network's
#: share stays that of one 640 x 640 window whatever the image size (4096 x 4096: 0.53 GB
#: above the loaded model, ``benchmarks/bench_memory.py``).
LARGE_IMAGE_PIXELS = Tiling().above_pixels
#: Environment variable naming the model: a local folder or a Hub id.
MODEL_ENV = "AMFL_MODEL"
#: Environment variable setting torch's CPU threads for the app (the CLI has --threads).
THREADS_ENV = "AMFL_THREADS"
#: Environment variable choosing the number format the app's network computes in (the CLI
#: has --precision): one of :data:`amfl.models.precision.PRECISIONS`, or ``auto`` (the
#: default): bfloat16 where the CPU computes it natively, about twice as fast there.
PRECISION_ENV = "AMFL_PRECISION"
#: Environment variable choosing what runs the app's network on whole images: one of
#: :data:`amfl.onnx_runtime.RUNTIME_SETTINGS`; ``auto`` (the default) is ONNX Runtime where it
#: is installed and the network computes in float32, torch elsewhere.
RUNTIME_ENV = "AMFL_RUNTIME"
#: One thread per request: on a small shared CPU a second OpenMP thread of this small
#: network mostly waits (25x slower at 128 x 128 on a busy 2-core machine), and a web
#: server runs requests side by side instead.
DEFAULT_THREADS = 1
#: Keys of :meth:`Segmentation.areas`: the four classes, then the two whole chromosomes.
AREA_NAMES = (
    "background", "chromosome_1_only", "chromosome_2_only", "overlap", "chromosome_a",
    "chromosome_b",
)


@dataclass(frozen=True)
class Segmentation:
    """The result for one image, at the image's own size.

    Attributes:
        grey: (H, W) float32 grey values as read (original polarity and units).
        labels: (H, W) uint8 class map: 0 background, 1 first chromosome only, 2 second
            chromosome only, 3 overlap.
        light_background: the image had a light background and was inverted for the model.
        seconds: time from the grey image to the label map (preprocessing, network, crop).
        notes: what was changed on the way in (alpha dropped, background inverted).
    """

    grey: np.ndarray
    labels: np.ndarray
    light_background: bool
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape[0], self.labels.shape[1]

    def display(self) -> np.ndarray:
        """The image as a viewer shows it: (H, W) uint8, stretched from its min to its max."""
        return stretch_to_uint8(self.grey)

    def chromosome_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Chromosome A (classes 1 + 3) and chromosome B (classes 2 + 3) as boolean masks."""
        return chromosome_masks(self.labels)

    def areas(self) -> dict[str, int]:
        """Pixel counts of each class and of the two whole chromosomes."""
        counts = np.bincount(self.labels.ravel(), minlength=NUM_CLASSES).tolist()
        first, second = self.chromosome_masks()
        return dict(zip(AREA_NAMES, [*counts, int(first.sum()), int(second.sum())], strict=True))

    def overlay(self, opacity: float = 0.5) -> np.ndarray:
        """(H, W, 3) uint8: the image with each chromosome class tinted in the paper's colour."""
        return overlay(self.display(), self.labels, opacity)

    def cutouts(self) -> tuple[np.ndarray, np.ndarray]:
        """Chromosome A and B cut out of the image, the rest filled with the background."""
        fill = 255 if self.light_background else 0
        display = self.display()
        return tuple(np.where(mask, display, np.uint8(fill)) for mask in self.chromosome_masks())


def chromosome_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome A = classes 1 + 3 and chromosome B = classes 2 + 3 (both own the overlap)."""
    return (labels == FIRST) | (labels == OVERLAP), (labels == SECOND) | (labels == OVERLAP)


def inference_ready(model: torch.nn.Module, precision: str = PRECISIONS[0]) -> torch.nn.Module:
    """An inference copy of the model: eval mode, batch norms folded into their convolutions,
    channels-last memory layout and weights in ``precision`` (:mod:`amfl.models.precision`).
    The layout makes the small NestedUNet about 1.5x faster on a 2-core CPU, the folding
    another 10-15 % (``benchmarks/bench_inference.py``)."""
    return in_precision(fold_batch_norms(model).to(memory_format=torch.channels_last), precision)


class Segmenter:
    """A loaded model and its preprocessing; load once, call :meth:`segment` per image.

    Thread-safe: the model is only read (eval mode, inference mode), so concurrent requests
    of a web server may share one instance. ``preprocessor`` None:
    ``Preprocessor.for_model(model)``, what models saved without one were trained with.
    ``tiling``: when the network runs in tiles (default :class:`amfl.tiling.Tiling`: above
    ``LARGE_IMAGE_PIXELS``, 512-pixel cores with 64 pixels of context). ``precision``: the
    number format the network computes in (:data:`amfl.models.precision.PRECISIONS`).
    ``runtime``: what runs the network on whole images (:mod:`amfl.onnx_runtime`; ``auto``:
    ONNX Runtime where it can, else torch); :attr:`runtime` is the one that does.
    """

    def __init__(
        self, model: torch.nn.Module, source: str = "<in memory>", preprocessor: Preprocessor | None = None,
        tiling: Tiling | None = None, precision: str = PRECISIONS[0], runtime: str = RUNTIMES[0],
    ) -> None:
        self.model = whole_image_grid(inference_ready(model, precision))
        self.precision = precision
        self.source = source
        self.preprocessor = preprocessor or Preprocessor.for_model(model)
        self.tiling = tiling or Tiling()
        self.device = next(model.parameters()).device
        # whole images go through ONNX Runtime or a trace (no GIL between operators); tiles
        # through the model itself, whose upsampling follows the tile's place in the image
        self.runtime = choose_runtime(runtime, precision, self.device)
        self.whole_image_network = self._whole_image_network()

    def _whole_image_network(self) -> torch.nn.Module | OnnxNetwork:
        in_channels, divisor = self.model.in_channels, int(getattr(self.model, "input_divisor", 1))
        if self.runtime == RUNTIMES[1]:
            try:
                return onnx_network(self.model, in_channels, divisor)
            except RuntimeError as error:
                logger.warning("%s runs in torch, not onnxruntime: %s", self.source, error)
                self.runtime = RUNTIMES[0]
        return traced_network(self.model, in_channels, divisor, self.device)

    @classmethod
    def from_pretrained(cls, source: str | Path, precision: str = PRECISIONS[0], runtime: str = RUNTIMES[0]) -> Segmenter:
        """Load the model folder or Hub id ``source`` with its saved preprocessing."""
        import amfl.hub

        model = amfl.hub.from_pretrained(source)
        return cls(model, str(source), amfl.hub.load_preprocessor(source, model), precision=precision, runtime=runtime)

    def segment(self, image: np.ndarray | str | Path) -> Segmentation:
        """Segment an image file (path) or an already decoded pixel array."""
        if isinstance(image, (str, Path)):
            return self.segment_grey(*read_grey(image))
        return self.segment_grey(*to_grey(image))

    @torch.inference_mode()
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities of a prepared (N, C, H, W) batch in one forward: the
        model's ``predict``, computed by its trace (:mod:`amfl.tracing`)."""
        return self.whole_image_network(batch).softmax(dim=1)

    def whole_image_labels(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 argmax labels of prepared (N, H, W) float32 images, in one forward.

        ONNX Runtime's logits are reduced in numpy: one torch operator between two of its runs
        wakes torch's OpenMP threads, whose spin-wait after it then takes the CPU from the next
        run (a crop's whole path on 2 threads took 44 ms with a torch argmax, 22-25 ms without;
        ``benchmarks/bench_segment.py``, ``results/runtime/README.md``)."""
        if isinstance(self.whole_image_network, OnnxNetwork):
            return self.whole_image_network.logits(images[:, None]).argmax(axis=1).astype(np.uint8)
        probabilities = self.predict(torch.from_numpy(images[:, None]).to(self.device))
        return probabilities.argmax(dim=1).to(torch.uint8).cpu().numpy()

    def is_large(self, shape: tuple[int, int]) -> bool:
        """Whether an image of ``shape`` (height, width) is segmented in tiles: more than
        ``tiling.above_pixels`` once padded to the network size."""
        return self.tiling.applies(self.preprocessor.network_size(shape))

    def segment_grey(self, grey: np.ndarray, notes: Sequence[str] = ()) -> Segmentation:
        """Segment a (H, W) grey image of either polarity. The preprocessing (background,
        polarity, scaling, padding) is of the whole image; on a large image only the network
        runs in tiles (:meth:`is_large`). The labels leave through the preprocessor's
        :meth:`~amfl.preprocessing.Preprocessor.finish` (small parts dropped, but not from a tiled
        image, a whole field; stray overlaps merged; names)."""
        started = time.perf_counter()
        prepared = self.preprocessor.prepare(grey[None])
        tiled = self.tiling.applies(prepared.images.shape[-2:])
        if tiled:
            labels = prepared.padding.crop(tiled_labels(self.model, prepared.images[0], self.tiling, self.device))
        else:
            labels = prepared.padding.crop(self.whole_image_labels(prepared.images)[0])
        labels = self.preprocessor.finish(labels, prepared.unpadded()[0], whole_field=tiled)
        seconds = time.perf_counter() - started
        light = bool(prepared.inverted[0])
        if light:
            notes = [*notes, "light background detected: inverted so chromosomes are bright"]
        return Segmentation(grey, np.ascontiguousarray(labels), light, seconds, tuple(notes))


def limit_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads (process-wide): ``threads``, else ``$AMFL_THREADS``, else 1."""
    if threads is None:
        setting = os.environ.get(THREADS_ENV) or str(DEFAULT_THREADS)
        if not setting.isdigit():
            raise ValueError(f"{THREADS_ENV} must be a whole number of threads, got {setting!r}")
        threads = int(setting)
    if threads < 1:
        raise ValueError(f"the number of CPU threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def resolve_precision() -> str:
    """The app's number format for the network: the one ``$AMFL_PRECISION`` names, else
    that of ``auto`` (:func:`amfl.models.precision.choose_precision`); a ValueError names
    the accepted settings and the variable."""
    try:
        return choose_precision(os.environ.get(PRECISION_ENV) or AUTO)
    except ValueError as error:
        raise ValueError(f"{error} (from {PRECISION_ENV})") from None


def resolve_runtime() -> str:
    """The app's runtime setting: the one ``$AMFL_RUNTIME`` names, else ``auto``; a
    ValueError names the accepted settings and the variable."""
    return check_runtime(os.environ.get(RUNTIME_ENV) or RUNTIME_SETTINGS[0], f" (from {RUNTIME_ENV})")


def resolve_model_source(source: str | Path | None, default: Path | None = None) -> str:
    """The model to load: ``source``, else ``$AMFL_MODEL``, else the caller's ``default``
    folder (the app's bundled model).

    The default folder is checked here, because a missing local path would otherwise be
    taken for a Hub id and fail with a confusing download error.
    """
    if source is not None and str(source):
        return str(source)
    if os.environ.get(MODEL_ENV):
        return os.environ[MODEL_ENV]
    if default is None:
        raise FileNotFoundError(
            f"no model given: pass a model folder or Hub id (--model), or set {MODEL_ENV}; "
            "the repository bundles one in space/model"
        )
    if not Path(default).is_dir():
        raise FileNotFoundError(
            f"no model to load: the default model folder {default} does not exist and "
            f"{MODEL_ENV} is not set. Put a trained model there (config.json + "
            f"model.safetensors, as written by save_pretrained) or set {MODEL_ENV} to a "
            "model folder or a Hub id."
        )
    return str(default)


@dataclass(frozen=True)
class Analysis:
    """An image's segmentation with its optional ground truth and scores.

    ``truth_problem`` says why a given ground truth could not be used; the segmentation is
    still worth showing, so that is not an error.
    """

    name: str
    segmentation: Segmentation
    truth: np.ndarray | None = None
    scores: dict[str, float] | None = None
    truth_problem: str | None = None

    def difference(self) -> np.ndarray | None:
        """The Fig. 6 difference image, or None without a ground truth."""
        return None if self.truth is None else difference_image(self.segmentation.labels, self.truth)


def analyse(
    segmenter: Segmenter, image: str | Path, truth: str | Path | None = None, name: str | None = None
) -> Analysis:
    """Segment the image file ``image`` and score it against the file ``truth`` if given
    (the paper's eight metrics, percent; Hausdorff in pixels).

    Raises InputError when the image cannot be used; a bad ground truth is reported in
    ``truth_problem`` instead.
    """
    segmentation = segmenter.segment(image)
    name = name or Path(image).name
    if truth is None:
        return Analysis(name, segmentation)
    try:
        labels = read_ground_truth(truth, segmentation.shape)
    except InputError as error:
        return Analysis(name, segmentation, truth_problem=f"ground truth {error}")
    return Analysis(name, segmentation, labels, score_batch(segmentation.labels, labels).means)
