"""amfl.onnx_runtime: whole images run in ONNX Runtime only where it can run them and only
when its logits stay within tolerance of the network's; otherwise torch runs them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amfl.demo import main
from amfl.models import create_model
from amfl.onnx_runtime import LOGIT_TOLERANCE, OnnxNetwork, choose_runtime, onnx_network
from amfl.reading import read_grey
from amfl.segmentation import RUNTIME_ENV, Segmenter, resolve_runtime
from conftest import BUNDLED_MODEL, REPO

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def onnx_segmenter(bundled_segmenter):
    """The bundled model run by ONNX Runtime, on the bundled segmenter's one thread."""
    return Segmenter.from_pretrained(BUNDLED_MODEL, runtime="onnxruntime")


def test_the_bundled_model_runs_in_onnxruntime_and_labels_the_examples_as_torch_does(onnx_segmenter, bundled_segmenter):
    assert onnx_segmenter.runtime == "onnxruntime" and isinstance(onnx_segmenter.whole_image_network, OnnxNetwork)
    examples = sorted((REPO / "space" / "examples").glob("example_?.png"))
    assert len(examples) >= 3
    for path in examples:
        grey, _ = read_grey(path)
        prepared = onnx_segmenter.preprocessor.prepare(grey[None])
        batch = torch.from_numpy(prepared.images[:, None])
        with torch.inference_mode():
            logits, reference = (segmenter.whole_image_network(batch) for segmenter in (onnx_segmenter, bundled_segmenter))
        assert logits.shape == reference.shape
        assert float((logits - reference).abs().max()) < LOGIT_TOLERANCE
        np.testing.assert_array_equal(onnx_segmenter.segment(path).labels, bundled_segmenter.segment(path).labels)


def test_onnxruntime_takes_any_batch_and_size_the_network_takes(onnx_segmenter):
    network = onnx_segmenter.model
    for shape in [(1, 1, 96, 80), (3, 1, 128, 176)]:
        images = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected = network(images)
        torch.testing.assert_close(onnx_segmenter.whole_image_network(images), expected, rtol=0, atol=LOGIT_TOLERANCE)


def test_auto_picks_onnxruntime_only_for_float32_on_the_cpu(monkeypatch):
    assert choose_runtime("auto", "float32") == "onnxruntime"
    assert choose_runtime("auto", "bfloat16") == "torch"
    assert choose_runtime("auto", "float32", torch.device("cuda")) == "torch"
    assert choose_runtime("torch", "float32") == "torch"
    monkeypatch.setattr("amfl.onnx_runtime.onnxruntime_installed", lambda: False)
    assert choose_runtime("auto", "float32") == "torch"


def test_asking_for_onnxruntime_where_it_cannot_run_says_why(monkeypatch):
    with pytest.raises(ValueError, match="it computes float32 only, not bfloat16"):
        choose_runtime("onnxruntime", "bfloat16")
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; choose one of auto, torch, onnxruntime"):
        choose_runtime("tensorrt", "float32")
    monkeypatch.setattr("amfl.onnx_runtime.onnxruntime_installed", lambda: False)
    with pytest.raises(ValueError, match=r"it is not installed \(pip install onnx onnxruntime\)"):
        choose_runtime("onnxruntime", "float32")


def test_a_session_out_of_tolerance_falls_back_to_the_trace(monkeypatch, caplog):
    caplog.set_level("WARNING", logger="amfl.segmentation")
    monkeypatch.setattr("amfl.onnx_runtime.LOGIT_TOLERANCE", -1.0)  # no difference is small enough
    torch.manual_seed(0)
    segmenter = Segmenter(create_model("amfl-small", base_width=4), runtime="onnxruntime")
    assert segmenter.runtime == "torch" and isinstance(segmenter.whole_image_network, torch.jit.ScriptModule)
    assert "runs in torch, not onnxruntime: its logits differ from the network's" in caplog.text
    grey = (np.random.default_rng(0).random((94, 93)) * 255).astype(np.uint8)
    assert segmenter.segment(grey).labels.shape == (94, 93)


def test_a_network_the_exporter_cannot_take_is_a_runtime_error():
    class ListOutput(torch.nn.Module):
        def forward(self, images):
            return images.tolist()

    with pytest.raises(RuntimeError, match="the ONNX export failed"):
        onnx_network(ListOutput(), 1, 16)


def test_the_app_runtime_comes_from_its_variable(monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert resolve_runtime() == "auto"
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    assert resolve_runtime() == "torch"


def test_a_bad_amfl_runtime_stops_the_start_with_the_choices(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "gpu")
    with pytest.raises(SystemExit) as exit_info:
        main(default_model=BUNDLED_MODEL)
    assert "unknown runtime 'gpu' (from AMFL_RUNTIME); choose one of auto, torch, onnxruntime" in str(exit_info.value.code)


def test_a_crop_in_onnxruntime_runs_no_torch_operator(onnx_segmenter, bundled_segmenter):
    """One torch operator between two session runs wakes torch's OpenMP threads, whose
    spin-wait then slows the next run (Segmenter.whole_image_labels); the torch path is the
    control that the profiler sees its operators."""
    grey, _ = read_grey(REPO / "space" / "examples" / "example_1.png")
    seen = {}
    for segmenter in (onnx_segmenter, bundled_segmenter):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            segmenter.segment_grey(grey)
        seen[segmenter.runtime] = {event.name for event in profile.events() if event.name.startswith("aten::")}
    assert {"aten::softmax", "aten::argmax"} <= seen["torch"]
    assert seen["onnxruntime"] == set()
