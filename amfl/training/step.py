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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from amfl.losses import LSGANLoss
from amfl.metrics import NUM_CLASSES


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite: training cannot recover, so it stops."""


@dataclass
class AdversarialStep:
    """Callable on a batch (images (N,1,H,W), labels (N,H,W)); returns the step's losses.

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

    def __post_init__(self) -> None:
        self.gan_loss = LSGANLoss()

    def __call__(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self.accelerator.autocast():
            logits = self.generator(images).float()
        losses: dict[str, Tensor] = {}
        if self.discriminator is not None:
            losses["discriminator"] = self._update_discriminator(images, labels, logits.softmax(dim=1).detach())
        losses.update(self._update_generator(images, labels, logits))
        return losses

    def _update_discriminator(self, images: Tensor, labels: Tensor, fake: Tensor) -> Tensor:
        discriminator, optimizer = self.discriminator, self.discriminator_optimizer
        real = nn.functional.one_hot(labels, NUM_CLASSES).movedim(-1, 1).to(fake.dtype)
        _set_requires_grad(discriminator, True)
        with self.accelerator.no_sync(discriminator), self.accelerator.autocast():
            fake_loss = self.gan_loss(discriminator(images, fake).float(), "fake")
        self._backward(fake_loss, "discriminator (generated pairs)")
        with self.accelerator.autocast():
            real_loss = self.gan_loss(discriminator(images, real).float(), "real")
        self._backward(real_loss, "discriminator (true pairs)")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return (fake_loss + real_loss).detach()

    def _update_generator(self, images: Tensor, labels: Tensor, logits: Tensor) -> dict[str, Tensor]:
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
        losses["generator"] = total.detach()
        self._backward(total, "generator")
        self.generator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        return losses

    def _backward(self, loss: Tensor, name: str) -> None:
        """Backward pass, refusing a non-finite loss on any process (all stop together)."""
        finite = self.accelerator.gather(torch.isfinite(loss.detach()).reshape(1))
        if not bool(finite.all()):
            raise NonFiniteLossError(
                f"the {name} loss is {loss.item()} (NaN or infinite) on at least one process; "
                "training stopped. Check the input data for NaN values, lower the learning "
                "rates, or train in full precision (--mixed_precision no)."
            )
        self.accelerator.backward(loss)


def _set_requires_grad(module: nn.Module, enabled: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(enabled)
