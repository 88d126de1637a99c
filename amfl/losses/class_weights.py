"""Class weights for the weighted losses: rare classes (the overlap) count more."""

import torch
from torch import Tensor


def inverse_frequency_weights(pixel_counts: Tensor) -> Tensor:
    """Weights total / (C * count_c) from the training set's pixel count of each class.

    A class holding 1/C of the pixels gets weight 1; the weights' count-weighted mean is 1,
    so the weighted loss keeps the scale of the unweighted one.
    """
    counts = torch.as_tensor(pixel_counts, dtype=torch.float64)
    if counts.ndim != 1 or (counts <= 0).any():
        raise ValueError(
            f"pixel_counts must be a 1-D list of positive counts, one per class; got {counts.tolist()}"
        )
    return (counts.sum() / (len(counts) * counts)).to(torch.float32)


def check_class_weights(weight: Tensor) -> None:
    """Require a 1-D tensor of finite positive weights."""
    if weight.ndim != 1 or not torch.isfinite(weight).all() or (weight <= 0).any():
        raise ValueError(f"class weights must be a 1-D tensor of finite positive values; got {weight}")
