"""amfl.tracing: whole images go through a TorchScript trace of the network only when the
trace computes exactly what the network does; otherwise the network runs eagerly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from amfl.models import create_model
from amfl.segmentation import Segmenter
from amfl.tracing import TRACE_SIDES, traced_network

CPU = torch.device("cpu")


class SizeBranch(nn.Module):
    """Takes another branch at another width: a trace keeps the branch it saw."""

    def forward(self, images):
        return images if images.shape[-1] == TRACE_SIDES[0][1] * 16 else -images


class Untraceable(nn.Module):
    def forward(self, images):
        return {"logits": images}, images.tolist()


def test_the_bundled_model_is_traced_and_labels_every_size_as_the_model_does(bundled_segmenter):
    assert isinstance(bundled_segmenter.whole_image_network, torch.jit.ScriptModule)
    generator = np.random.default_rng(3)
    for shape in [(94, 93), (128, 128), (200, 131), (513, 300)]:
        grey = (generator.random(shape) * 4000).astype(np.uint16)
        grey[shape[0] // 3 : shape[0] // 2, 10:-10] += 30000
        prepared = bundled_segmenter.preprocessor.prepare(grey[None])
        batch = torch.from_numpy(prepared.images[:, None])
        torch.testing.assert_close(bundled_segmenter.predict(batch), bundled_segmenter.model.predict(batch),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("network", [SizeBranch(), Untraceable()], ids=["size-dependent", "untraceable"])
def test_a_network_its_trace_would_change_runs_eagerly(network, caplog):
    caplog.set_level("INFO", logger="amfl.tracing")
    assert traced_network(network, 1, 16, CPU) is network
    assert "runs eagerly" in caplog.text


def test_a_segmenter_of_an_untraced_network_still_segments(monkeypatch):
    torch.manual_seed(0)
    model = create_model("amfl-small", base_width=4)
    traced = Segmenter(model)
    monkeypatch.setattr("amfl.segmentation.traced_network", lambda network, *_: network)
    eager = Segmenter(model)
    assert eager.whole_image_network is eager.model and traced.whole_image_network is not traced.model
    grey = (np.random.default_rng(0).random((94, 93)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(eager.segment(grey).labels, traced.segment(grey).labels)
