"""Shape checks shared by the segmentation losses, so a wrong pairing fails with both shapes."""

from torch import Tensor


def check_logits_and_target(logits: Tensor, target: Tensor) -> None:
    """Require (N, C, H, W) logits and (N, H, W) integer labels of the same N, H, W."""
    if logits.ndim != 4 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            "expected logits (N, C, H, W) and target labels (N, H, W); got logits "
            f"{tuple(logits.shape)} and target {tuple(target.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype.is_complex:
        raise ValueError(f"target must hold integer class labels; got dtype {target.dtype}")
