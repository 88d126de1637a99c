"""Soft Dice loss and its class-weighted form (the "Dice" and "Weight-Dice" rows of Table V)."""

import torch
from torch import Tensor, nn

from amfl.losses.class_weights import check_class_weights
from amfl.losses.inputs import check_logits_and_target


class DiceLoss(nn.Module):
    """1 - mean over classes of the soft Dice 2 |P . G| / (|P| + |G|), over the whole batch.

    P are softmax probabilities and G the one-hot truth. Classes absent from the batch's truth
    are left out of the mean: their Dice is 0 whatever the prediction (no gradient, only an
    offset), so the loss reaches 0 on a perfect prediction.

    Args:
        weight: optional (C,) positive class weights; the class mean becomes a weighted mean
            (e.g. ``inverse_frequency_weights``), giving rare classes such as the overlap more say.

    Shape: logits (N, C, H, W), target (N, H, W) integer labels -> scalar in [0, 1].
    """

    def __init__(self, weight: Tensor | None = None) -> None:
        super().__init__()
        if weight is not None:
            check_class_weights(weight)
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        num_classes = logits.shape[1]
        probabilities = logits.softmax(dim=1)
        truth = nn.functional.one_hot(target, num_classes).movedim(-1, 1).to(probabilities.dtype)
        sums = (0, 2, 3)
        overlap = (probabilities * truth).sum(dim=sums)
        truth_sizes = truth.sum(dim=sums)
        dice = 2 * overlap / (probabilities.sum(dim=sums) + truth_sizes)
        weight = torch.ones_like(dice) if self.weight is None else self.weight
        if weight.shape != dice.shape:
            raise ValueError(f"{len(weight)} class weights for logits with {num_classes} classes")
        present = truth_sizes > 0
        return 1 - (weight * dice)[present].sum() / weight[present].sum()
