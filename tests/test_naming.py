"""Chromosome naming: training targets that follow the prediction (--pair_naming free), and
output named by area wherever a model's output is read (app, scoring, training)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import amfl.hub
from amfl.models import create_model
from amfl.naming import apply_naming, name_by_area, names_following_prediction, swap_names
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.scoring import predict_labels
from amfl.segmentation import Segmenter
from amfl.training import train
from conftest import BUNDLED_MODEL, example_arrays
from test_training import tiny_config, tiny_data


def _misnamed() -> np.ndarray:
    """A pair whose label 1 is the larger chromosome (8 + 4 px against 4 + 4 overlap px)."""
    labels = np.zeros((6, 8), np.uint8)
    labels[1:5, 1:3], labels[1:5, 3], labels[1:5, 4] = 1, 3, 2
    return labels


def _logits_for(labels: np.ndarray) -> torch.Tensor:
    """(1, 4, H, W) logits whose argmax is ``labels``."""
    return nn.functional.one_hot(torch.from_numpy(labels).long(), 4).movedim(-1, 0)[None].float() * 5


def test_training_targets_follow_the_naming_the_prediction_agrees_with():
    truth = torch.from_numpy(np.stack([_misnamed(), _misnamed()])).long()
    prediction = torch.cat([_logits_for(swap_names(_misnamed())), _logits_for(_misnamed())])
    followed = names_following_prediction(truth, prediction)
    assert np.array_equal(followed[0].numpy(), swap_names(_misnamed()))  # names exchanged
    assert torch.equal(followed[1], truth[1])  # the prediction agreed with the truth's names
    assert torch.equal(followed == 3, truth == 3) and torch.equal(followed == 0, truth == 0)


def test_only_samples_with_overlap_follow_the_prediction_when_asked():
    touching = np.where(_misnamed() == 3, 0, _misnamed()).astype(np.uint8)  # the same pair, no overlap
    truth = torch.from_numpy(np.stack([_misnamed(), touching])).long()
    prediction = torch.cat([_logits_for(swap_names(_misnamed())), _logits_for(swap_names(touching))])
    followed = names_following_prediction(truth, prediction, overlapping_only=True)
    assert np.array_equal(followed[0].numpy(), swap_names(_misnamed()))  # overlap: names follow
    assert torch.equal(followed[1], truth[1])  # touching: the truth's names kept
    assert np.array_equal(names_following_prediction(truth, prediction)[1].numpy(), swap_names(touching))


def test_output_named_by_area_per_image_and_only_when_asked():
    batch = np.stack([_misnamed(), swap_names(_misnamed())])
    assert apply_naming(batch, "network") is batch
    named = apply_naming(batch, "area")
    assert np.array_equal(named[0], swap_names(_misnamed())) and np.array_equal(named[1], swap_names(_misnamed()))
    assert np.array_equal(name_by_area(_misnamed()), named[0])
    with pytest.raises(ValueError, match="naming must be one of"):
        apply_naming(batch, "size")


def test_the_preprocessor_keeps_the_naming_and_reads_older_files_as_network(tmp_path):
    Preprocessor(naming="area").save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE).naming == "area"
    older = Preprocessor().to_dict()
    del older["naming"]
    assert Preprocessor.from_dict(older).naming == "network"
    with pytest.raises(ValueError, match="naming must be one of"):
        Preprocessor(naming="size")


def test_the_segmenter_names_its_output_as_the_preprocessor_says():
    model = amfl.hub.from_pretrained(BUNDLED_MODEL)
    as_network = dataclasses.replace(amfl.hub.load_preprocessor(BUNDLED_MODEL, model), naming="network")
    image, _ = example_arrays(1)
    expected = apply_naming(Segmenter(model, preprocessor=as_network).segment(image).labels, "area")
    with torch.no_grad():  # the same network with its names 1 and 2 exchanged
        for parameter in (model.head.weight, model.head.bias):
            parameter[[1, 2]] = parameter[[2, 1]].clone()
    by_area = dataclasses.replace(as_network, naming="area")
    assert not np.array_equal(Segmenter(model, preprocessor=as_network).segment(image).labels, expected)
    assert np.array_equal(Segmenter(model, preprocessor=by_area).segment(image).labels, expected)


class _FixedLogits(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(images), -1, -1, -1)


def test_scoring_names_the_predictions_as_asked():
    model = _FixedLogits(_logits_for(_misnamed()))
    data = TensorDataset(torch.zeros(2, 1, 6, 8), torch.from_numpy(np.stack([_misnamed()] * 2)).long())
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(DataLoader(data, batch_size=2))
    as_network, _ = predict_labels(accelerator, model, loader, "", progress=False)
    by_area, truth = predict_labels(accelerator, model, loader, "", progress=False, output=Preprocessor(naming="area"))
    assert np.array_equal(as_network[0], _misnamed())
    assert np.array_equal(by_area[0], swap_names(_misnamed())) and np.array_equal(truth[0], _misnamed())


@pytest.mark.parametrize("pair_naming", ["free", "free_overlapping"])
def test_a_free_naming_run_saves_a_model_named_by_area(tmp_path, training_h5, pair_naming):
    create_model("amfl-small", base_width=4).save_pretrained(tmp_path / "strict")
    Preprocessor().save(tmp_path / "strict")
    config = tiny_config(tmp_path / "run", training_h5, "--epochs", "1", "--no-gan", "--pair_naming", pair_naming,
                         "--init_from", str(tmp_path / "strict"))
    result = train(config, tiny_data(config))
    assert Preprocessor.read(result.model_dir / PREPROCESSOR_FILE).naming == "area"
    assert json.loads((result.model_dir / "training_config.json").read_text())["pair_naming"] == pair_naming
