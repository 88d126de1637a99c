"""Lovasz-Softmax loss (eq. 3-4 of the AMFL paper; Berman, Triki and Blaschko, CVPR 2018).

A convex surrogate of the Jaccard loss 1 - IoU of each class, so training optimises the
IoU the paper reports instead of per-pixel likelihood.
"""

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from amfl.losses.inputs import check_logits_and_target

#: "present": average over classes that occur in the batch's ground truth (Berman et al.'s
#: reference default); "all": over every class, absent ones pushing their probability to 0.
ClassSelection = Literal["present", "all"]


def lovasz_softmax(logits: Tensor, target: Tensor, classes: ClassSelection = "present") -> Tensor:
    """Mean over classes of the Lovasz extension of the Jaccard loss, over the whole batch.

    For class c, the pixel errors m(c) = |[y == c] - softmax(logits)_c| (eq. 4) are sorted
    in decreasing order and weighted by the increments of the Jaccard loss of the growing
    set of worst pixels: the gradient of the Lovasz extension at m(c) (eq. 3).

    Args:
        logits: (N, C, H, W) raw scores; softmax is applied here.
        target: (N, H, W) integer labels in 0..C-1.
        classes: which classes the mean runs over, see ``ClassSelection``.

    Returns:
        Scalar loss in [0, 1]; on one-hot predictions it equals 1 - mean IoU of the classes.
    """
    _check_class_selection(classes)
    check_logits_and_target(logits, target)
    num_classes = logits.shape[1]
    probabilities = logits.softmax(dim=1).movedim(1, -1).reshape(-1, num_classes).T
    foreground = nn.functional.one_hot(target.reshape(-1), num_classes).T.to(probabilities.dtype)
    errors = (foreground - probabilities).abs()
    sorted_errors, order = errors.sort(dim=1, descending=True)
    per_class = (sorted_errors * _jaccard_increments(foreground.gather(1, order))).sum(dim=1)
    if classes == "present":
        per_class = per_class[foreground.sum(dim=1) > 0]
    return per_class.mean()


def _check_class_selection(classes: str) -> None:
    if classes not in get_args(ClassSelection):
        raise ValueError(f"classes must be one of {get_args(ClassSelection)}; got {classes!r}")


def _jaccard_increments(sorted_foreground: Tensor) -> Tensor:
    """Jaccard loss of the first k sorted pixels minus that of the first k - 1, per class row.

    With the first k pixels counted as mispredicted, the intersection left is
    |fg| - (fg pixels among them) and the union |fg| + (background pixels among them).
    """
    foreground_total = sorted_foreground.sum(dim=1, keepdim=True)
    intersection = foreground_total - sorted_foreground.cumsum(dim=1)
    union = foreground_total + (1 - sorted_foreground).cumsum(dim=1)
    jaccard_loss = 1 - intersection / union
    return torch.cat([jaccard_loss[:, :1], jaccard_loss.diff(dim=1)], dim=1)


class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax`, the AMFL generator's segmentation loss."""

    def __init__(self, classes: ClassSelection = "present") -> None:
        super().__init__()
        _check_class_selection(classes)
        self.classes = classes

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return lovasz_softmax(logits, target, self.classes)
