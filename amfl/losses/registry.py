"""Segmentation losses by name (the objectives compared in Table V, and one beyond the paper),
for a trainer flag."""

from dataclasses import dataclass, field

from torch import Tensor, nn

from amfl.losses.class_weights import check_class_weights
from amfl.losses.dice import DiceLoss
from amfl.losses.lovasz import LovaszBatchAndImageLoss, LovaszSoftmaxLoss


@dataclass(frozen=True)
class LossSpec:
    """How to build one named loss; ``weighted`` losses take per-class weights."""

    loss_class: type[nn.Module]
    weighted: bool
    description: str
    #: Constructor arguments that make this loss from its class.
    options: dict[str, object] = field(default_factory=dict)


SEGMENTATION_LOSSES: dict[str, LossSpec] = {
    "lovasz": LossSpec(LovaszSoftmaxLoss, False, "Lovasz-Softmax (the AMFL paper's choice)"),
    "lovasz_image": LossSpec(
        LovaszSoftmaxLoss, False, "Lovasz-Softmax per image over all four classes, as the metrics score",
        {"classes": "all", "per_image": True},
    ),
    "lovasz_both": LossSpec(LovaszBatchAndImageLoss, False, "the mean of lovasz and lovasz_image"),
    "ce": LossSpec(nn.CrossEntropyLoss, False, "cross entropy"),
    "weighted_ce": LossSpec(nn.CrossEntropyLoss, True, "class-weighted cross entropy"),
    "dice": LossSpec(DiceLoss, False, "soft Dice"),
    "weighted_dice": LossSpec(DiceLoss, True, "class-weighted soft Dice"),
}


def create_loss(name: str, class_weights: Tensor | None = None) -> nn.Module:
    """The loss ``name`` (a key of ``SEGMENTATION_LOSSES``), called as loss(logits, labels).

    ``class_weights`` (C,) is required by the weighted losses and refused by the others, so
    a flag combination that would silently ignore the weights fails instead.
    """
    try:
        spec = SEGMENTATION_LOSSES[name]
    except KeyError:
        raise KeyError(
            f"unknown loss {name!r}; valid names: {', '.join(SEGMENTATION_LOSSES)}"
        ) from None
    if spec.weighted != (class_weights is not None):
        need = "needs" if spec.weighted else "takes no"
        raise ValueError(f"loss {name!r} {need} class_weights; got {class_weights}")
    if class_weights is None:
        return spec.loss_class(**spec.options)
    check_class_weights(class_weights)
    return spec.loss_class(weight=class_weights, **spec.options)
