"""Widening a trained NestedUNet (amfl.models.widening): same function, copies free to diverge."""

import pytest
import torch

from amfl.models import NestedUNet, UNet
from amfl.models.widening import _channel_sources, widen_nested_unet


def trained_looking(base_width: int) -> NestedUNet:
    """A NestedUNet whose batch norms hold non-trivial running statistics, as a trained one does."""
    torch.manual_seed(0)
    model = NestedUNet(base_width=base_width)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 32, 32) * 3)
    return model


@pytest.mark.parametrize("wide_width", [2, 3, 4, 7])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_widened_model_computes_what_the_narrow_one_did(wide_width, mode):
    narrow = trained_looking(2)
    wide = widen_nested_unet(narrow, wide_width, seed=1)
    assert wide.base_width == wide_width
    getattr(narrow, mode)()
    getattr(wide, mode)()
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide(images), narrow(images), rtol=1e-4, atol=1e-4)


def test_copies_of_a_channel_get_different_gradients():
    wide = widen_nested_unet(trained_looking(2), 4, seed=1)
    wide(torch.rand(2, 1, 32, 32)).square().mean().backward()
    first = wide.nodes["x0_0"][0].weight.grad
    sources = _channel_sources(2, 4, torch.Generator().manual_seed(0))
    assert sorted(sources.tolist()) == [0, 0, 1, 1]
    # Channels 0 and 1 are the originals; 2 and 3 copy them in some order: same weights at the start...
    copy_of_zero = 2 if torch.equal(wide.nodes["x0_0"][0].weight[2], wide.nodes["x0_0"][0].weight[0]) else 3
    assert torch.equal(wide.nodes["x0_0"][0].weight[copy_of_zero], wide.nodes["x0_0"][0].weight[0])
    # ...but not the same gradient, so training moves them apart.
    assert not torch.allclose(first[copy_of_zero], first[0])


def test_doubling_copies_every_channel_once():
    sources = _channel_sources(8, 16, torch.Generator().manual_seed(3))
    assert sources[:8].tolist() == list(range(8))
    assert sorted(sources[8:].tolist()) == list(range(8))


def test_only_a_nested_unet_can_be_widened_and_only_wider():
    with pytest.raises(ValueError, match="base width 4 to the smaller 2"):
        widen_nested_unet(NestedUNet(base_width=4), 2)
    with pytest.raises(TypeError, match="only a NestedUNet can be widened; got a UNet"):
        widen_nested_unet(UNet(base_width=4), 8)
