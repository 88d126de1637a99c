"""bfloat16 inference (amfl.models.precision): the network computes in bfloat16 behind a
float32 interface, its labels stay those of float32, and every way of asking for it (the
Segmenter, the app's variable, the command line) is checked, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import amfl.hub
import amfl.models.precision
from amfl.models import create_model
from amfl.models.precision import (
    PRECISIONS, check_precision, choose_precision, in_precision, native_bfloat16, warn_if_bfloat16_is_emulated,
)
from amfl.predict import main as predict_main
from amfl.segmentation import PRECISION_ENV, Segmenter, resolve_precision
from conftest import BUNDLED_MODEL, example_arrays, example_paths


@pytest.fixture(scope="module")
def bundled():
    return amfl.hub.from_pretrained(BUNDLED_MODEL).eval()


def example_batch() -> torch.Tensor:
    """The first Space example, as the bundled model's preprocessing prepares it."""
    model = amfl.hub.from_pretrained(BUNDLED_MODEL)
    prepared = amfl.hub.load_preprocessor(BUNDLED_MODEL, model).prepare(example_arrays(1)[0][None].astype(np.float32))
    return torch.from_numpy(prepared.images[:, None])


def test_float32_is_the_model_itself():
    model = create_model("amfl-small", base_width=4)
    assert in_precision(model, "float32") is model


def test_bfloat16_computes_in_bfloat16_behind_a_float32_interface(bundled):
    images = example_batch()
    reduced = in_precision(bundled, "bfloat16")
    assert {parameter.dtype for parameter in reduced.parameters()} == {torch.bfloat16}
    assert not any(isinstance(module, nn.BatchNorm2d) for module in reduced.modules())  # folded first
    assert {parameter.dtype for parameter in bundled.parameters()} == {torch.float32}  # the original is kept
    with torch.inference_mode():
        full, half = bundled(images), reduced(images)
        probabilities = reduced.predict(images)
    assert half.dtype == probabilities.dtype == torch.float32 and half.shape == full.shape
    assert not torch.equal(half, full)  # it really computed in another format
    agreement = (half.argmax(1) == full.argmax(1)).float().mean().item()
    assert agreement > 0.995, agreement


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown precision 'float16'; choose one of float32, bfloat16"):
        check_precision("float16")
    assert PRECISIONS[0] == "float32"  # the default


def test_the_segmenter_runs_bfloat16_traced_and_labels_like_float32(bundled):
    image = example_arrays(1)[0]
    reduced = Segmenter(bundled, precision="bfloat16")
    full = Segmenter(bundled)
    assert isinstance(reduced.whole_image_network, torch.jit.ScriptModule)  # the trace was kept
    assert next(reduced.model.parameters()).dtype == torch.bfloat16
    labels, expected = reduced.segment(image).labels, full.segment(image).labels
    assert labels.dtype == np.uint8 and labels.shape == expected.shape
    assert (labels == expected).mean() > 0.995


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bfloat16_only_on_a_cpu_with_native_bfloat16(monkeypatch, native):
    monkeypatch.setattr(amfl.models.precision, "native_bfloat16", lambda: native)
    assert choose_precision("auto") == ("bfloat16" if native else "float32")
    assert choose_precision("float32") == "float32" and choose_precision("bfloat16") == "bfloat16"  # names are kept


@pytest.mark.parametrize("native", [False, True])
def test_training_in_bfloat16_warns_only_where_the_cpu_emulates_it(monkeypatch, recwarn, native):
    monkeypatch.setattr(amfl.models.precision, "native_bfloat16", lambda: native)
    warn_if_bfloat16_is_emulated("no", torch.device("cpu"))
    warn_if_bfloat16_is_emulated("bf16", torch.device("cuda"))
    assert not recwarn.list
    warn_if_bfloat16_is_emulated("bf16", torch.device("cpu"))
    messages = [str(warning.message) for warning in recwarn.list]
    if native:
        assert not messages
    else:
        assert len(messages) == 1 and "bfloat16 is emulated here" in messages[0]


def test_native_bfloat16_follows_the_cpu_probes(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not native_bfloat16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert native_bfloat16()


def test_the_apps_precision_comes_from_the_variable_or_auto(monkeypatch):
    monkeypatch.setattr(amfl.models.precision, "native_bfloat16", lambda: True)
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert resolve_precision() == "bfloat16"
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert resolve_precision() == "float32"
    monkeypatch.setattr(amfl.models.precision, "native_bfloat16", lambda: False)
    monkeypatch.delenv(PRECISION_ENV)
    assert resolve_precision() == "float32"
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ValueError, match=r"unknown precision 'half'; choose one of auto, float32, bfloat16 \(from AMFL_PRECISION\)"):
        resolve_precision()


def test_the_command_line_segments_in_bfloat16_or_auto(tmp_path, capsys, restore_threads):
    images = tmp_path / "in"
    images.mkdir()
    (images / "one.png").write_bytes(example_paths(1)[0].read_bytes())
    assert predict_main([str(images), str(tmp_path / "out"), "--model", str(BUNDLED_MODEL), "--precision", "bfloat16", "--quiet"]) == 0
    assert (tmp_path / "out" / "one_labels.png").is_file()
    assert predict_main([str(images), str(tmp_path / "auto"), "--model", str(BUNDLED_MODEL), "--precision", "auto", "--quiet"]) == 0
    assert (tmp_path / "auto" / "one_labels.png").is_file()
    with pytest.raises(SystemExit):
        predict_main([str(images), str(tmp_path / "out2"), "--precision", "half"])
    assert "invalid choice: 'half'" in capsys.readouterr().err
