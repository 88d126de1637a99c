"""One optimisation step of AMFL (eq. 5-7), shared by the trainer and the throughput benchmark.

The discriminator and the generator are updated alternately on the same batch, as in
pix2pix: one generator forward pass; the discriminator learns from the detached output;
then the generator learns from the updated discriminator and the segmentation loss.

Distributed data parallel (DDP) needs care with two networks and two updates:
- the discriminator's fake and real halves are two backward passes; the first runs under
  ``no_sync`` so its gradients are all-reduced once, together with the second;
- the generator's adversarial term goes through the *unwrapped* discriminator with its
  parameters frozen: no DDP hooks wait for gradients that never come, and the
  discriminator's weights receive no gradient from the generator's loss.

The step itself never waits for the device: it returns detached losses, which a
:class:`LossTracker` sums on the device and checks for NaN or infinity every
``LOSS_CHECK_INTERVAL`` steps, in one collective sync.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from amfl.losses import LSGANLoss, divergence_from_reference
from amfl.metrics import NUM_CLASSES
from amfl.naming import names_following_prediction

#: Steps between two checks of the running losses. Each check makes the host wait for the
#: device (and, under DDP, for the other processes); a NaN is caught at most this many steps
#: late, before the epoch's end and so before any checkpoint or model is written.
LOSS_CHECK_INTERVAL = 25


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite: training cannot recover, so it stops."""


@dataclass
class AdversarialStep:
    """Callable on a batch (images (N,1,H,W), labels (N,H,W)); returns the step's losses,
    detached and left on the device (check them with a :class:`LossTracker`).

    With ``discriminator`` None it trains the generator alone on the segmentation loss
    (the "without GAN" rows of Table V).
    """

    accelerator: Accelerator
    generator: nn.Module
    generator_optimizer: torch.optim.Optimizer
    segmentation_loss: nn.Module
    discriminator: nn.Module | None = None
    discriminator_optimizer: torch.optim.Optimizer | None = None
    lambda_segmentation: float = 10.0
    channels_last: bool = False
    #: ``--pair_naming``: with ``free`` each sample's chromosome names follow the prediction
    #: (:func:`amfl.naming.names_following_prediction`) in both losses; with
    #: ``free_overlapping`` only the names of samples with overlap do.
    pair_naming: str = "strict"
    #: ``--distil_pommier``: the starting model (frozen, in eval mode), whose output the
    #: generator is held to on the samples a batch marks ``anchored``, with this weight.
    teacher: nn.Module | None = None
    distil_weight: float = 0.0

    def __post_init__(self) -> None:
        self.gan_loss = LSGANLoss()

    def __call__(self, images: Tensor, labels: Tensor, anchored: Tensor | None = None) -> dict[str, Tensor]:
        """``anchored`` (N,) bool marks the samples held to the teacher's output (none if None)."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self.accelerator.autocast():
            logits = self.generator(images).float()
        if self.pair_naming != "strict":
            labels = names_following_prediction(labels, logits, overlapping_only=self.pair_naming == "free_overlapping")
        losses: dict[str, Tensor] = {}
        if self.discriminator is not None:
            losses["discriminator"] = self._update_discriminator(images, labels, logits.softmax(dim=1).detach())
        losses.update(self._update_generator(images, labels, logits, anchored))
        return losses

    def _update_discriminator(self, images: Tensor, labels: Tensor, fake: Tensor) -> Tensor:
        discriminator, optimizer = self.discriminator, self.discriminator_optimizer
        real = nn.functional.one_hot(labels, NUM_CLASSES).movedim(-1, 1).to(fake.dtype)
        _set_requires_grad(discriminator, True)
        with self.accelerator.no_sync(discriminator), self.accelerator.autocast():
            fake_loss = self.gan_loss(discriminator(images, fake).float(), "fake")
        self.accelerator.backward(fake_loss)
        with self.accelerator.autocast():
            real_loss = self.gan_loss(discriminator(images, real).float(), "real")
        self.accelerator.backward(real_loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return (fake_loss + real_loss).detach()

    def _update_generator(self, images: Tensor, labels: Tensor, logits: Tensor, anchored: Tensor | None) -> dict[str, Tensor]:
        segmentation = self.segmentation_loss(logits, labels)
        losses = {"segmentation": segmentation.detach()}
        if self.discriminator is None:
            total = segmentation
        else:
            judge = self.accelerator.unwrap_model(self.discriminator)
            _set_requires_grad(judge, False)
            with self.accelerator.autocast():
                adversarial = self.gan_loss.generator_loss(judge(images, logits.softmax(dim=1)).float())
            losses["adversarial"] = adversarial.detach()
            total = adversarial + self.lambda_segmentation * segmentation
        if self.teacher is not None:
            distillation = self._distillation(images, logits, anchored)
            losses["distillation"] = distillation.detach()
            total = total + self.distil_weight * distillation
        losses["generator"] = total.detach()
        self.accelerator.backward(total)
        self.generator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        return losses


    def _distillation(self, images: Tensor, logits: Tensor, anchored: Tensor | None) -> Tensor:
        """The divergence from the teacher on the anchored samples; 0 (kept in the graph, so
        every step and process logs the same losses) when the batch has none. Selecting the
        anchored samples makes the host wait for the device once a step, with a teacher only."""
        if anchored is None or not bool(anchored.any()):
            return logits.sum() * 0.0
        with torch.no_grad(), self.accelerator.autocast():
            reference = self.teacher(images[anchored]).float()
        return divergence_from_reference(logits[anchored], reference)


class LossTracker:
    """Sums each step's losses on the device and checks them every ``interval`` steps.

    Checking every loss of every step would stop the host three times a step to wait for the
    device (and gather across processes). A sum is NaN or infinite if and only if one of its
    terms is, so checking the running totals catches the same divergence, a few steps later,
    with one sync per ``interval`` steps. Under DDP every process calls :meth:`add` equally
    often (the prepared loaders give each the same number of batches), so all of them reach
    the collective reduce at the same step and take the same decision.
    """

    def __init__(self, accelerator: Accelerator, label: str, interval: int = LOSS_CHECK_INTERVAL) -> None:
        self.accelerator = accelerator
        #: Where the steps run (e.g. "epoch 3"), for the error message.
        self.label = label
        self.interval = interval
        self.totals: dict[str, Tensor] = {}
        self.steps = 0
        self.checked_steps = 0
        #: Each loss averaged over the checked steps and the processes.
        self.means: dict[str, float] = {}

    def add(self, losses: dict[str, Tensor]) -> bool:
        """Add one step's losses (no sync); every ``interval`` steps, :meth:`check` them.

        Returns whether this step checked, i.e. whether :attr:`means` is new.
        """
        for name, value in losses.items():
            self.totals[name] = self.totals[name] + value if name in self.totals else value.clone()
        self.steps += 1
        if self.steps % self.interval:
            return False
        self.check()
        return True

    def finish(self) -> dict[str, float]:
        """Check the steps not checked yet; returns each loss averaged over steps and processes."""
        if self.steps > self.checked_steps:
            self.check()
        return self.means

    def check(self) -> None:
        """Reduce the totals across processes, refuse a NaN or infinite one, update :attr:`means`.

        Collective under DDP: every process must call it at the same step.
        """
        names = sorted(self.totals)
        totals = torch.stack([self.totals[name].float() for name in names])
        reduced = self.accelerator.reduce(totals, "mean").tolist()  # the one host sync
        means = {name: total / self.steps for name, total in zip(names, reduced)}
        diverged = [name for name, mean in means.items() if not math.isfinite(mean)]
        if diverged:
            losses = f"{', '.join(diverged)} loss{'es' if len(diverged) > 1 else ''}"
            raise NonFiniteLossError(
                f"the {losses} became NaN or infinite on at least one process in {self.label}, steps "
                f"{self.checked_steps + 1}-{self.steps}; training stopped. Check the input data for NaN "
                "values, lower the learning rates, or train in full precision (--mixed_precision no)."
            )
        self.checked_steps = self.steps
        self.means = means


def _set_requires_grad(module: nn.Module, enabled: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(enabled)
