"""Weights on the line from a model to its fine-tune (amfl.models.interpolation)."""

import pytest
import torch
from safetensors.torch import save_file

from amfl.models import NestedUNet
from amfl.models.interpolation import interpolated_model, mean_weights, read_weights


def pair_of_models() -> tuple[NestedUNet, dict[str, torch.Tensor]]:
    """A start and the weights of a 'fine-tune' of it: every float tensor moved, counters changed."""
    torch.manual_seed(0)
    start = NestedUNet(base_width=2)
    tuned = {
        name: tensor + torch.randn_like(tensor) if tensor.is_floating_point() else tensor + 7
        for name, tensor in start.state_dict().items()
    }
    return start, tuned


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_every_float_tensor_lies_at_the_weight_between_start_and_fine_tune(weight):
    start, tuned = pair_of_models()
    mixed = interpolated_model(start, tuned, weight).state_dict()
    for name, first in start.state_dict().items():
        if first.is_floating_point():
            torch.testing.assert_close(mixed[name], (1 - weight) * first + weight * tuned[name])
        else:
            assert torch.equal(mixed[name], tuned[name]), name


def test_the_start_is_left_as_it_was():
    start, tuned = pair_of_models()
    before = {name: tensor.clone() for name, tensor in start.state_dict().items()}
    interpolated_model(start, tuned, 0.5)
    for name, tensor in start.state_dict().items():
        assert torch.equal(tensor, before[name]), name


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_a_negative_or_non_finite_weight_is_refused(weight):
    start, tuned = pair_of_models()
    with pytest.raises(ValueError, match="must be a finite number, 0 or more"):
        interpolated_model(start, tuned, weight)


def test_a_weight_past_one_recovers_the_fine_tune_from_a_blend():
    start, tuned = pair_of_models()
    blend = interpolated_model(start, tuned, 0.4).state_dict()
    recovered = interpolated_model(start, blend, 1 / 0.4).state_dict()
    for name, tensor in tuned.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(recovered[name], tensor, rtol=0, atol=1e-5)


def test_weights_of_another_width_are_refused_with_the_tensors_named():
    start, _ = pair_of_models()
    wider = NestedUNet(base_width=4).state_dict()
    with pytest.raises(ValueError, match="do not fit the starting model: shape mismatches: .*nodes"):
        interpolated_model(start, wider, 0.5)


def test_weights_are_read_from_a_file_or_a_folder_and_a_missing_file_is_named(tmp_path):
    tensors = {"a": torch.arange(3.0)}
    save_file(tensors, tmp_path / "model.safetensors")
    for path in (tmp_path, tmp_path / "model.safetensors"):
        assert torch.equal(read_weights(path)["a"], tensors["a"])
    with pytest.raises(FileNotFoundError, match="no weights at .*empty"):
        read_weights(tmp_path / "empty")


def test_a_mean_of_weights_averages_float_tensors_and_takes_the_last_counters():
    start, tuned = pair_of_models()
    first = start.state_dict()
    third = {name: tensor * 3 if tensor.is_floating_point() else tensor + 1 for name, tensor in tuned.items()}
    mean = mean_weights([first, tuned, third])
    for name, tensor in first.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(mean[name], (tensor + tuned[name] + third[name]) / 3)
        else:
            assert torch.equal(mean[name], third[name]), name


def test_weights_that_do_not_match_are_not_averaged():
    start, tuned = pair_of_models()
    missing = dict(tuned)
    name = next(iter(missing))
    del missing[name]
    with pytest.raises(ValueError, match=name):
        mean_weights([start.state_dict(), missing])
    with pytest.raises(ValueError, match="no weights"):
        mean_weights([])
