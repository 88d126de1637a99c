"""Losses of eq. 3-7 and Table V, checked against independent computations."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from amfl.metrics import score_batch

from amfl.losses import (
    SEGMENTATION_LOSSES,
    DiceLoss,
    LovaszSoftmaxLoss,
    LSGANLoss,
    create_loss,
    inverse_frequency_weights,
    lovasz_softmax,
)


def jaccard_loss_of_mistakes(foreground: np.ndarray, mistakes: np.ndarray) -> float:
    """Delta_J of eq. 3: 1 - |F minus M| / |F union M| for mispredicted set M; 0 if both empty."""
    union = (foreground | mistakes).sum()
    return 0.0 if union == 0 else 1 - (foreground & ~mistakes).sum() / union


def brute_force_lovasz_extension(foreground: np.ndarray, errors: np.ndarray) -> float:
    """Choquet integral of the set function Delta_J at ``errors`` >= 0, from its definition:
    the integral over t of Delta_J({i : errors_i >= t}), summed level by level."""
    total, previous = 0.0, 0.0
    for level in np.unique(errors):
        total += (level - previous) * jaccard_loss_of_mistakes(foreground, errors >= level)
        previous = level
    return total


def brute_force_lovasz_softmax(logits: torch.Tensor, target: torch.Tensor, classes: str) -> float:
    probabilities = logits.softmax(dim=1).movedim(1, -1).reshape(-1, logits.shape[1]).double().numpy()
    labels = target.reshape(-1).numpy()
    per_class = []
    for label in range(logits.shape[1]):
        foreground = labels == label
        if classes == "present" and not foreground.any():
            continue
        errors = np.abs(foreground.astype(float) - probabilities[:, label])
        per_class.append(brute_force_lovasz_extension(foreground, errors))
    return float(np.mean(per_class))


@pytest.mark.parametrize(("seed", "classes"), list(itertools.product(range(6), ("present", "all"))))
def test_lovasz_matches_brute_force_extension_on_tiny_inputs(seed, classes):
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(2, 4, 3, 2, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 3, 2), generator=generator)  # class 3 absent
    expected = brute_force_lovasz_softmax(logits, target, classes)
    assert lovasz_softmax(logits, target, classes).item() == pytest.approx(expected, abs=1e-10)


def test_lovasz_on_hard_predictions_is_one_minus_mean_iou():
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (3, 8, 8), generator=generator)
    prediction = torch.where(torch.rand(3, 8, 8, generator=generator) < 0.3, (target + 1) % 4, target)
    logits = 100 * nn.functional.one_hot(prediction, 4).movedim(-1, 1).double()
    ious = [
        ((prediction == c) & (target == c)).sum().item() / ((prediction == c) | (target == c)).sum().item()
        for c in range(4)
    ]
    assert lovasz_softmax(logits, target).item() == pytest.approx(1 - np.mean(ious), abs=1e-9)
    assert LovaszSoftmaxLoss()(logits, target).item() == pytest.approx(1 - np.mean(ious), abs=1e-9)


@pytest.mark.parametrize(("seed", "classes"), list(itertools.product(range(4), ("present", "all"))))
def test_per_image_lovasz_is_the_mean_of_each_images_own_loss(seed, classes):
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(3, 4, 3, 2, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (3, 3, 2), generator=generator)  # class 3 absent, others maybe
    expected = np.mean([brute_force_lovasz_softmax(logits[i:i + 1], target[i:i + 1], classes) for i in range(3)])
    assert lovasz_softmax(logits, target, classes, per_image=True).item() == pytest.approx(expected, abs=1e-10)


def test_per_image_lovasz_on_hard_predictions_is_one_minus_the_metrics_mean_iou():
    """The paper's IoU, per image over the four classes (an absent class predicted nowhere
    scores 100) then over images: what the per-image loss on one-hot predictions leaves."""
    generator = torch.Generator().manual_seed(2)
    target = torch.randint(0, 3, (4, 8, 8), generator=generator)
    target[0, 2:4, 2:4] = 3  # one image with overlap, three touching ones
    prediction = torch.where(torch.rand(4, 8, 8, generator=generator) < 0.2, (target + 1) % 4, target)
    prediction[1] = torch.where(target[1] == 3, 1, target[1])  # one image exactly right
    logits = 100 * nn.functional.one_hot(prediction, 4).movedim(-1, 1).double()
    mean_iou = score_batch(prediction.numpy(), target.numpy()).means["iou"] / 100
    assert lovasz_softmax(logits, target, "all", per_image=True).item() == pytest.approx(1 - mean_iou, abs=1e-9)
    assert create_loss("lovasz_image")(logits, target).item() == pytest.approx(1 - mean_iou, abs=1e-9)


def test_a_speck_of_overlap_on_a_touching_pair_costs_a_quarter_per_image_and_little_over_a_batch():
    """Batch of a crossing and a touching pair, predicted right but for one overlap pixel
    painted on the touching one."""
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, 4:12, 2:8], target[:, 4:12, 8:14] = 1, 2
    target[0, 6:10, 6:10] = 3
    prediction = target.clone()
    prediction[1, 8, 4] = 3
    logits = 100 * nn.functional.one_hot(prediction, 4).movedim(-1, 1).double()
    # class 3 costs 1 on the touching pair and class 1 1/48 (one of its 48 pixels), over 4 classes and 2 images
    assert lovasz_softmax(logits, target, "all", per_image=True).item() == pytest.approx((1 + 1 / 48) / 4 / 2, abs=1e-9)
    assert lovasz_softmax(logits, target).item() < 0.03


@pytest.mark.parametrize("seed", range(4))
def test_lovasz_both_is_the_mean_of_the_batch_loss_and_each_images_loss_over_all_classes(seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 4, 5, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (3, 4, 5), generator=generator)
    batch = brute_force_lovasz_softmax(logits, target, "present")
    images = np.mean([brute_force_lovasz_softmax(logits[i : i + 1], target[i : i + 1], "all") for i in range(3)])
    assert create_loss("lovasz_both")(logits, target).item() == pytest.approx((batch + images) / 2, abs=1e-9)


def test_lovasz_is_zero_on_a_perfect_prediction_and_refuses_bad_options():
    target = torch.randint(0, 4, (2, 5, 5))
    logits = 100 * nn.functional.one_hot(target, 4).movedim(-1, 1).double()
    assert lovasz_softmax(logits, target).item() == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="classes"):
        lovasz_softmax(logits, target, classes="some")
    with pytest.raises(ValueError, match="target"):
        lovasz_softmax(logits, target[:, :4])


def test_lsgan_losses_follow_eq_5_and_6():
    loss = LSGANLoss()
    real, fake = torch.full((2, 1, 3, 3), 0.75), torch.full((2, 1, 3, 3), 0.25)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.25**2 + 0.25**2)
    assert loss.generator_loss(fake).item() == pytest.approx(0.75**2)
    assert loss.discriminator_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 0
    with pytest.raises(ValueError, match="target"):
        loss(real, "maybe")


def test_dice_loss_matches_hand_computation_and_ignores_absent_classes():
    logits = torch.tensor([[[[2.0, -1.0]], [[0.5, 1.0]]]])  # (1, 2 classes, 1, 2)
    target = torch.tensor([[[0, 0]]])
    probabilities = logits.softmax(dim=1)[0, :, 0]
    dice_background = 2 * probabilities[0].sum() / (probabilities[0].sum() + 2)
    # Class 1 is absent from the truth: it is left out of the mean.
    assert DiceLoss()(logits, target).item() == pytest.approx(1 - dice_background.item(), rel=1e-6)


def test_weighted_dice_weights_the_class_mean():
    generator = torch.Generator().manual_seed(3)
    logits, target = torch.randn(2, 4, 6, 6, generator=generator), torch.randint(0, 4, (2, 6, 6), generator=generator)
    probabilities = logits.softmax(1)
    truth = nn.functional.one_hot(target, 4).movedim(-1, 1).float()
    dice = 2 * (probabilities * truth).sum((0, 2, 3)) / (probabilities.sum((0, 2, 3)) + truth.sum((0, 2, 3)))
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    expected = 1 - (weights * dice).sum() / weights.sum()
    assert DiceLoss(weights)(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_inverse_frequency_weights_favour_rare_classes_and_keep_scale():
    counts = torch.tensor([900.0, 50.0, 40.0, 10.0])
    weights = inverse_frequency_weights(counts)
    assert torch.allclose(weights, counts.sum() / (4 * counts))
    assert ((weights * counts).sum() / counts.sum()).item() == pytest.approx(1.0)
    assert weights.argmax() == 3
    with pytest.raises(ValueError, match="positive"):
        inverse_frequency_weights(torch.tensor([5.0, 0.0]))


def test_loss_registry_builds_every_table_v_loss():
    assert set(SEGMENTATION_LOSSES) == {"lovasz", "lovasz_image", "lovasz_both", "ce", "weighted_ce", "dice", "weighted_dice"}
    logits, target = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randint(0, 4, (2, 8, 8))
    weights = torch.tensor([0.3, 1.0, 1.0, 3.0])
    for name, spec in SEGMENTATION_LOSSES.items():
        loss = create_loss(name, weights if spec.weighted else None)(logits, target)
        assert loss.ndim == 0 and torch.isfinite(loss)


def numpy_cross_entropy(logits: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> float:
    """-sum_i w[y_i] log softmax(z_i)[y_i] / sum_i w[y_i], over every pixel of the batch."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, target[:, None], axis=1)[:, 0]
    pixel_weights = np.ones(target.shape) if weights is None else weights[target]
    return float(-(pixel_weights * picked).sum() / pixel_weights.sum())


@pytest.mark.parametrize("name", ["ce", "weighted_ce"])
def test_cross_entropy_losses_match_a_hand_computation(name):
    generator = torch.Generator().manual_seed(5)
    logits = 4 * torch.randn(2, 4, 5, 3, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 5, 3), generator=generator)
    weights = torch.tensor([0.3, 1.0, 2.0, 5.0], dtype=torch.float64) if name == "weighted_ce" else None
    expected = numpy_cross_entropy(logits.numpy(), target.numpy(), None if weights is None else weights.numpy())
    assert create_loss(name, weights)(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_weighted_cross_entropy_is_a_weighted_mean_not_a_sum():
    """Two pixels, perfectly uncertain over 4 classes: every pixel loses log 4, so any
    weights give log 4 when the loss divides by the weights of the true classes."""
    logits = torch.zeros(1, 4, 1, 2, dtype=torch.float64)
    target = torch.tensor([[[0, 3]]])
    weights = torch.tensor([1.0, 1.0, 1.0, 9.0], dtype=torch.float64)
    assert create_loss("weighted_ce", weights)(logits, target).item() == pytest.approx(np.log(4), rel=1e-12)


def test_loss_registry_refuses_missing_or_unused_weights():
    with pytest.raises(ValueError, match="needs class_weights"):
        create_loss("weighted_dice")
    with pytest.raises(ValueError, match="takes no class_weights"):
        create_loss("lovasz", torch.ones(4))
    with pytest.raises(KeyError, match="lovasz"):
        create_loss("focal")
