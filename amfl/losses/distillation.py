"""How far a fine-tuned generator's output has moved from its starting model's.

A fine-tune on real pairs moves the whole network, and with it the Pommier pairs the
starting model already segmented well (``results/real-image/README.md``: no candidate of
rules 43-45 held the Pommier validation Hausdorff). ``--distil_pommier`` adds this
divergence on the Pommier training pairs, so the network keeps its answers there while
the real pairs move the rest (knowledge distillation with the starting model as teacher).
"""

from torch import Tensor, nn


def divergence_from_reference(logits: Tensor, reference_logits: Tensor) -> Tensor:
    """KL(reference || output) of the per-pixel class distributions, summed over the classes
    and averaged over pixels and samples.

    Shape: logits (N, C, H, W) of the network that learns, ``reference_logits`` of the same
    shape from the fixed one (no gradient flows into it) -> scalar, 0 where the two agree.
    """
    if logits.shape != reference_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and reference {tuple(reference_logits.shape)} differ in shape")
    log_output = logits.log_softmax(dim=1)
    log_reference = reference_logits.detach().log_softmax(dim=1)
    pointwise = nn.functional.kl_div(log_output, log_reference, reduction="none", log_target=True)
    return pointwise.sum(dim=1).mean()
