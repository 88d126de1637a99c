"""Least-squares GAN loss of the AMFL objective (eq. 5-6; Mao et al., ICCV 2017)."""

from typing import Literal, get_args

import torch
from torch import Tensor, nn

#: What the discriminator's patch scores are pushed towards: 1 for "real", 0 for "fake".
Target = Literal["real", "fake"]
_TARGET_SCORES = {"real": 1.0, "fake": 0.0}


class LSGANLoss(nn.Module):
    """Mean squared distance of every patch score to the target: E[(D - t)^2].

    Least squares instead of the log loss keeps gradients alive for samples far on the right
    side of the decision boundary, which the paper credits for stable training.

    - Discriminator (eq. 5): ``discriminator_loss(D(i, y), D(i, G(i).detach()))``
      = E[(D(i, y) - 1)^2] + E[D(i, G(i))^2].
    - Generator (eq. 6): ``generator_loss(D(i, G(i)))`` = E[(D(i, G(i)) - 1)^2].

    Shape: patch scores (N, 1, h, w) from ``PatchDiscriminator`` -> scalar.
    """

    def forward(self, patch_scores: Tensor, target: Target) -> Tensor:
        if target not in _TARGET_SCORES:
            raise ValueError(f"target must be one of {get_args(Target)}; got {target!r}")
        return nn.functional.mse_loss(patch_scores, torch.full_like(patch_scores, _TARGET_SCORES[target]))

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """Eq. 5: real pairs (image, truth) towards 1, generated pairs towards 0."""
        return self(real_scores, "real") + self(fake_scores, "fake")

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        """Eq. 6: the generator wants its pairs scored as real."""
        return self(fake_scores, "real")
