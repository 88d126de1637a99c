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


def lovasz_softmax(logits: Tensor, target: Tensor, classes: ClassSelection = "present", per_image: bool = False) -> Tensor:
    """Mean over classes of the Lovasz extension of the Jaccard loss, over the whole batch or
    per image.

    For class c, the pixel errors m(c) = |[y == c] - softmax(logits)_c| (eq. 4) are sorted
    in decreasing order and weighted by the increments of the Jaccard loss of the growing
    set of worst pixels: the gradient of the Lovasz extension at m(c) (eq. 3).

    Args:
        logits: (N, C, H, W) raw scores; softmax is applied here.
        target: (N, H, W) integer labels in 0..C-1.
        classes: which classes the mean runs over, see ``ClassSelection``.
        per_image: each image's own loss, then their mean, as the paper's metrics score per
            image (:mod:`amfl.metrics`). With ``classes="all"`` a class absent from an image
            costs its most confident pixel there: a speck of overlap painted on a touching pair
            is the quarter of its mean Dice that the metrics take, where over a whole batch
            whose other images hold overlap it is a few false pixels among many.

    Returns:
        Scalar loss in [0, 1]; on one-hot predictions it equals 1 - mean IoU of the classes
        (per image with ``per_image``, an absent class predicted nowhere counting IoU 1).
    """
    _check_class_selection(classes)
    check_logits_and_target(logits, target)
    count, num_classes = logits.shape[:2]
    groups = count if per_image else 1
    # rows of (group, class): each image's pixels, or the whole batch's
    probabilities = logits.softmax(dim=1).reshape(count, num_classes, -1)
    foreground = nn.functional.one_hot(target.reshape(count, -1), num_classes).movedim(-1, 1).to(probabilities.dtype)
    if not per_image:
        probabilities = probabilities.movedim(0, 1).reshape(1, num_classes, -1)
        foreground = foreground.movedim(0, 1).reshape(1, num_classes, -1)
    errors = (foreground - probabilities).abs().reshape(groups * num_classes, -1)
    foreground = foreground.reshape(groups * num_classes, -1)
    sorted_errors, order = errors.sort(dim=1, descending=True)
    per_class = (sorted_errors * _jaccard_increments(foreground.gather(1, order))).sum(dim=1).reshape(groups, num_classes)
    if classes == "all":
        return per_class.mean()
    present = (foreground.sum(dim=1) > 0).reshape(groups, num_classes).to(per_class.dtype)
    return ((per_class * present).sum(dim=1) / present.sum(dim=1)).mean()


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

    def __init__(self, classes: ClassSelection = "present", per_image: bool = False) -> None:
        super().__init__()
        _check_class_selection(classes)
        self.classes = classes
        self.per_image = per_image

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return lovasz_softmax(logits, target, self.classes, self.per_image)


class LovaszBatchAndImageLoss(nn.Module):
    """The mean of the paper's loss over the batch (``lovasz``) and of its per-image form over all
    four classes (``lovasz_image``). In fine-tunes from the bundled default the first gained the
    real overlapping pairs and the second the touching ones, each losing the other kind
    (``results/real-image/README.md``, stops 44-45); the mean keeps both in the gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.batch = LovaszSoftmaxLoss()
        self.image = LovaszSoftmaxLoss("all", per_image=True)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return (self.batch(logits, target) + self.image(logits, target)) / 2
