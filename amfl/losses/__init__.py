"""Losses of the AMFL objective (eq. 3-7) and the alternatives of Table V."""

from amfl.losses.adversarial import LSGANLoss
from amfl.losses.class_weights import inverse_frequency_weights
from amfl.losses.dice import DiceLoss
from amfl.losses.distillation import divergence_from_reference
from amfl.losses.lovasz import LovaszBatchAndImageLoss, LovaszSoftmaxLoss, lovasz_softmax
from amfl.losses.registry import SEGMENTATION_LOSSES, LossSpec, create_loss

__all__ = [
    "SEGMENTATION_LOSSES",
    "DiceLoss",
    "LSGANLoss",
    "LossSpec",
    "LovaszBatchAndImageLoss",
    "LovaszSoftmaxLoss",
    "create_loss",
    "divergence_from_reference",
    "inverse_frequency_weights",
    "lovasz_softmax",
]
