"""--distil_pommier: the divergence from the starting model (amfl.losses.distillation), the
``anchored`` marks that carry it from the mixture to the step, and the refusals."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from amfl.losses import create_loss, divergence_from_reference
from amfl.models import create_model
from amfl.preprocessing import Preprocessor
from amfl.training import TrainConfig, train
from amfl.training.data import SplitTensors, training_set
from amfl.training.mixture import concatenate
from amfl.training.step import AdversarialStep
from test_training_mixture import pommier_like


def split_of(count: int = 6, anchored: torch.Tensor | None = None) -> SplitTensors:
    return dataclasses.replace(pommier_like(count).train, anchored=anchored)


def test_divergence_is_zero_only_where_the_outputs_agree_and_trains_only_the_output():
    torch.manual_seed(0)
    reference = torch.randn(2, 4, 8, 8, requires_grad=True)
    assert divergence_from_reference(reference.detach().clone(), reference).item() == pytest.approx(0.0, abs=1e-6)
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    divergence = divergence_from_reference(logits, reference)
    assert divergence.item() > 0.01
    divergence.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0 and reference.grad is None
    with pytest.raises(ValueError, match="differ in shape"):
        divergence_from_reference(logits, reference[:1])


class Recorder(nn.Module):
    """A teacher that records how many samples it was shown."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network, self.shown = network, []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.shown.append(len(images))
        return self.network(images)


def generator_step(teacher: nn.Module, weight: float) -> AdversarialStep:
    torch.manual_seed(0)
    generator = create_model("amfl-small", base_width=4)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    return AdversarialStep(Accelerator(cpu=True), generator, optimizer, create_loss("lovasz"), teacher=teacher, distil_weight=weight)


def test_the_teacher_sees_only_the_anchored_samples_and_a_batch_without_them_costs_nothing():
    teacher = Recorder(create_model("amfl-small", base_width=4).eval())
    step = generator_step(teacher, 1.0)
    split = split_of(4)
    losses = step(split.images, split.labels, torch.tensor([True, False, True, False]))
    assert teacher.shown == [2] and losses["distillation"].item() > 0
    losses = step(split.images, split.labels, torch.zeros(4, dtype=torch.bool))
    assert teacher.shown == [2] and losses["distillation"].item() == 0.0
    assert "distillation" not in generator_step(None, 0.0)(split.images, split.labels)


def test_a_weighted_divergence_pulls_the_generator_to_the_teacher():
    torch.manual_seed(1)
    teacher = create_model("amfl-small", base_width=4).eval()
    split = split_of(4)
    anchored = torch.ones(4, dtype=torch.bool)
    held, free = generator_step(teacher, 50.0), generator_step(teacher, 0.0)

    def divergence(step: AdversarialStep) -> float:
        with torch.no_grad():
            return divergence_from_reference(step.generator.eval()(split.images), teacher(split.images)).item()

    start = divergence(held)
    for step in (held, free):
        for _ in range(15):
            step.generator.train()
            step(split.images, split.labels, anchored)
    assert divergence(held) < 0.5 * start and divergence(held) < divergence(free)


def test_the_training_set_yields_the_marks_only_when_the_split_has_them():
    marks = torch.tensor([True, False, True, False, False, True])
    for augmentations in ([], ["flips"]):
        image, labels, mark = training_set(split_of(anchored=marks), augmentations, Preprocessor())[2]
        assert mark.item() is True and image.shape == (1, 128, 128) and labels.shape == (128, 128)
        assert len(training_set(split_of(), augmentations, Preprocessor())[2]) == 2


def test_concatenate_keeps_the_anchored_marks_of_each_part():
    joined = concatenate([split_of(2, torch.ones(2, dtype=torch.bool)), split_of(3)])
    assert joined.anchored.tolist() == [True, True, False, False, False]
    assert concatenate([split_of(2), split_of(3)]).anchored is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"distil_pommier": -1.0, "init_from": "start", "real_repeats": 1}, "0 or more"),
        ({"distil_pommier": 1.0, "real_repeats": 1}, "needs --init_from"),
        ({"distil_pommier": 1.0, "init_from": "start"}, "among ADIR ones"),
    ],
)
def test_bad_distillation_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_a_run_with_distillation_logs_the_divergence_and_starts_at_zero(tmp_path):
    start = create_model("amfl-small", base_width=4)
    start.save_pretrained(tmp_path / "start")
    data = pommier_like(8, 4)
    data = dataclasses.replace(data, train=dataclasses.replace(data.train, anchored=torch.tensor([True] * 4 + [False] * 4)))
    # With a learning rate of 0 the generator stays its start; frozen batch norm makes both
    # compute the same, so the divergence stays 0.
    config = TrainConfig(
        model="amfl-small", base_width=4, discriminator_width=8, batch_size=4, epochs=1, quiet=True, output_dir=tmp_path / "run",
        init_from=str(tmp_path / "start"), real_repeats=1, distil_pommier=5.0, lr_generator=0.0, freeze_batchnorm=True,
    )
    train(config, copy.deepcopy(data))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["epoch"] == 1 and log[-1]["loss"]["distillation"] == pytest.approx(0.0, abs=1e-6)
    moving = TrainConfig(**{**config.__dict__, "output_dir": tmp_path / "moving", "lr_generator": 1e-2})
    train(moving, copy.deepcopy(data))
    log = [json.loads(line) for line in (tmp_path / "moving" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"]["distillation"] > 0
