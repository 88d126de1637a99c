"""amfl.training.augment, AugmentedSplit and Preprocessor.normalise: shapes, geometry that
moves labels with the image, photometric changes that leave labels alone, renormalisation
after them (and only after them), refusals, determinism and the command line."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from amfl.preprocessing import Preprocessor, border_median
from amfl.training import parse_config
from amfl.training.augment import (
    AUGMENTATIONS,
    GRADIENT_MAX,
    OFFSET_MAX,
    PHOTOMETRIC,
    REAL_IMAGE_AUGMENTATIONS,
    SCALE_RANGE,
    random_crop,
)
from amfl.training.data import AugmentedSplit, SplitTensors, training_set

SIDE = 128
GEOMETRIC = ("flips", "rot90", "scale")
SEEDS = range(40)


def sample_labels(side: int = SIDE, width: int | None = None) -> torch.Tensor:
    """(side, width) int64: an upright bar labelled 1, a lying bar labelled 2, their
    overlap 3; placed off-centre so that every flip and turn changes the map."""
    labels = torch.zeros((side, width or side), dtype=torch.int64)
    first = torch.zeros_like(labels, dtype=torch.bool)
    second = torch.zeros_like(first)
    first[30:90, 40:52] = True
    second[70:80, 30:100] = True
    labels[first] = 1
    labels[second] = 2
    labels[first & second] = 3
    return labels


def encoded(labels: torch.Tensor) -> torch.Tensor:
    """An image that is a function of its labels: labels / 3, shape (1, H, W) float32."""
    return (labels.float() / 3)[None]


def interior(labels: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Pixels whose (2 radius + 1)^2 neighbourhood holds one label only (away from edges)."""
    same = torch.ones_like(labels, dtype=torch.bool)
    padded = torch.nn.functional.pad(labels[None, None].float(), (radius,) * 4, mode="replicate")[0, 0]
    height, width = labels.shape
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            same &= padded[dy : dy + height, dx : dx + width] == labels
    return same


def augmented(name: str, seed: int, image: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return AUGMENTATIONS[name](image, labels)


def split_of(count: int = 4, peak: float = 1.0, width: int = SIDE) -> SplitTensors:
    """``count`` copies of the encoded sample (image max ``peak``), as a split."""
    labels = sample_labels(SIDE, width)
    images = torch.stack([peak * encoded(labels)] * count)
    return SplitTensors(images.contiguous(), torch.stack([labels] * count).contiguous())


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_every_augmentation_keeps_the_shapes_and_types(name):
    labels = sample_labels()
    for seed in range(8):
        image, out_labels = augmented(name, seed, encoded(labels), labels)
        assert image.shape == (1, SIDE, SIDE) and image.dtype == torch.float32
        assert out_labels.shape == (SIDE, SIDE) and out_labels.dtype == torch.int64
        assert torch.isfinite(image).all()


def test_the_named_sets_are_known_augmentations():
    assert PHOTOMETRIC <= AUGMENTATIONS.keys()
    assert set(REAL_IMAGE_AUGMENTATIONS) <= AUGMENTATIONS.keys()
    assert PHOTOMETRIC.isdisjoint(GEOMETRIC)


@pytest.mark.parametrize("name", ["flips", "rot90"])
def test_flips_and_turns_move_the_labels_with_the_image(name):
    labels = sample_labels()
    outcomes = set()
    for seed in SEEDS:
        image, out_labels = augmented(name, seed, encoded(labels), labels)
        assert torch.equal(image, encoded(out_labels)), f"seed {seed}: image and labels moved apart"
        assert torch.equal(torch.bincount(out_labels.reshape(-1), minlength=4), torch.bincount(labels.reshape(-1), minlength=4))
        outcomes.add(out_labels.numpy().tobytes())
    assert len(outcomes) == 4, f"{name} gave {len(outcomes)} distinct orientations over {len(SEEDS)} seeds, not 4"


def test_scale_moves_the_labels_with_the_image_away_from_edges():
    labels = sample_labels()
    for seed in SEEDS:
        image, out_labels = augmented("scale", seed, encoded(labels), labels)
        inside = interior(out_labels)
        for label in (1, 2, 3):
            assert (inside & (out_labels == label)).any(), f"seed {seed}: no interior pixel of class {label}"
        assert torch.allclose(image[0][inside], out_labels[inside].float() / 3, atol=1e-4), f"seed {seed}"
        means = [image[0][out_labels == label].mean() for label in range(4)]
        assert means == sorted(means), f"seed {seed}: class means {means} out of order"


def test_scale_changes_the_area_by_the_square_of_a_factor_within_its_range():
    labels = sample_labels()
    area = int((labels > 0).sum())
    tolerance = 0.03
    ratios = []
    for seed in SEEDS:
        _, out_labels = augmented("scale", seed, encoded(labels), labels)
        ratios.append(int((out_labels > 0).sum()) / area)
    assert all((1 - SCALE_RANGE) ** 2 - tolerance <= ratio <= (1 + SCALE_RANGE) ** 2 + tolerance for ratio in ratios), ratios
    assert min(ratios) < 0.97 and max(ratios) > 1.03, ratios


@pytest.mark.parametrize("name", sorted(PHOTOMETRIC))
def test_photometric_augmentations_never_change_the_labels(name):
    labels = sample_labels()
    image = encoded(labels)
    changed = 0
    for seed in range(20):
        out_image, out_labels = augmented(name, seed, image, labels.clone())
        assert torch.equal(out_labels, labels), f"{name} seed {seed} changed the labels"
        changed += not torch.allclose(out_image, image)
    assert changed >= 5, f"{name} changed the image in only {changed} of 20 seeds"


def test_background_raises_the_border_and_normalise_takes_it_back_to_zero():
    labels = sample_labels()
    image = encoded(labels)
    assert border_median(image.numpy())[0] == 0
    for seed in range(20):
        raised, _ = augmented("background", seed, image, labels)
        level = (raised - image).numpy()
        offset = level.min()
        assert 0 <= offset <= OFFSET_MAX + 1e-6
        assert level.max() - offset <= GRADIENT_MAX + 1e-6, f"seed {seed}: gradient above GRADIENT_MAX"
        assert border_median(raised.numpy())[0] > 0, f"seed {seed}: border median not raised"
        normalised = Preprocessor().normalise(raised.numpy())
        assert normalised.shape == (1, SIDE, SIDE) and normalised.dtype == np.float32
        assert normalised.max() == pytest.approx(1.0) and normalised.min() >= 0
        # An even number of border pixels: the median is the mean of the two middle ones.
        assert 0 <= border_median(normalised)[0] < 2e-3


def test_normalise_scales_to_one_and_turns_a_light_background_dark():
    labels = sample_labels()
    image = encoded(labels).numpy()
    assert np.allclose(Preprocessor().normalise(0.5 * image), image)
    assert np.allclose(Preprocessor().normalise(1.0 - image), image, atol=1e-6)  # inverted, bright background


def test_photometric_augmentations_are_renormalised_by_the_preprocessor():
    split = split_of(peak=0.5)
    for augmentations in (["noise"], ["background"], ["gain_gamma"], list(REAL_IMAGE_AUGMENTATIONS)):
        dataset = AugmentedSplit(split, augmentations, Preprocessor())
        for seed in range(6):
            torch.manual_seed(seed)
            for index in range(len(dataset)):
                image, labels = dataset[index]
                assert image.shape == (1, SIDE, SIDE) and image.dtype == torch.float32 and labels.shape == (SIDE, SIDE)
                assert float(image.max()) == pytest.approx(1.0), f"{augmentations} seed {seed}: max {float(image.max())}"
                assert float(image.min()) >= 0


def test_geometric_augmentations_alone_are_not_renormalised():
    split = split_of(peak=0.5)
    for augmentations in (["flips"], ["flips", "rot90", "scale"]):
        dataset = AugmentedSplit(split, augmentations, Preprocessor())
        for seed in range(6):
            torch.manual_seed(seed)
            image, _ = dataset[seed % len(dataset)]
            assert float(image.max()) == pytest.approx(0.5), f"{augmentations} seed {seed}"


def test_no_augmentation_is_the_split_itself():
    split = split_of(peak=0.5)
    dataset = training_set(split, [], Preprocessor())
    assert isinstance(dataset, TensorDataset)
    image, labels = dataset[1]
    assert torch.equal(image, split.images[1]) and torch.equal(labels, split.labels[1])
    assert isinstance(training_set(split, ["flips"], Preprocessor()), AugmentedSplit)


def test_the_augmentations_do_not_change_the_split():
    split = split_of()
    before = split.images.clone(), split.labels.clone()
    dataset = AugmentedSplit(split, list(AUGMENTATIONS), Preprocessor())
    for seed in range(4):
        torch.manual_seed(seed)
        dataset[0]
    assert torch.equal(split.images, before[0]) and torch.equal(split.labels, before[1])


def test_unknown_augmentations_are_refused_by_name():
    with pytest.raises(ValueError, match="sharpen") as error:
        AugmentedSplit(split_of(), ["flips", "sharpen", "warp"], Preprocessor())
    assert "warp" in str(error.value) and "'flips'" not in str(error.value).split(";")[0]


def test_a_random_crop_is_a_window_of_the_sample_at_varying_places():
    labels = sample_labels()
    image = encoded(labels)
    corners = set()
    for seed in SEEDS:
        torch.manual_seed(seed)
        window, window_labels = random_crop(image, labels, 96)
        assert window.shape == (1, 96, 96) and window_labels.shape == (96, 96)
        assert torch.equal(window, encoded(window_labels)), f"seed {seed}: image and labels cut apart"
        matches = [(top, left) for top in range(SIDE - 95) for left in range(SIDE - 95)
                   if torch.equal(labels[top:top + 96, left:left + 96], window_labels)]
        assert matches, f"seed {seed}: the window is not a part of the sample"
        corners.add(matches[0])
    assert len(corners) > 20, f"only {len(corners)} places over {len(SEEDS)} seeds"


def test_crop_size_cuts_every_training_sample_after_normalising_and_refuses_a_larger_one():
    split = split_of(peak=0.5)
    dataset = training_set(split, [], Preprocessor(), crop_size=64)
    assert isinstance(dataset, AugmentedSplit)
    image, labels = dataset[0]
    assert image.shape == (1, 64, 64) and labels.shape == (64, 64)
    normalised = training_set(split, ["noise"], Preprocessor(), crop_size=96)
    torch.manual_seed(0)
    image, labels = normalised[0]
    assert image.shape == (1, 96, 96) and float(image.max()) <= 1.0
    with pytest.raises(ValueError, match="crop_size 160 is larger"):
        training_set(split, ["flips"], Preprocessor(), crop_size=160)


def test_rot90_needs_square_images():
    non_square = split_of(width=96)
    with pytest.raises(ValueError, match="square"):
        AugmentedSplit(non_square, ["flips", "rot90"], Preprocessor())
    image, labels = AugmentedSplit(non_square, ["flips", "noise"], Preprocessor())[0]
    assert image.shape == (1, SIDE, 96) and labels.shape == (SIDE, 96)


def test_the_same_seed_gives_the_same_sample_and_another_seed_another():
    dataset = AugmentedSplit(split_of(), list(REAL_IMAGE_AUGMENTATIONS), Preprocessor())

    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)
        return dataset[0]

    first, again, other = draw(7), draw(7), draw(8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_augmentations_run_in_the_modules_order_whatever_the_order_given():
    split = split_of()
    samples = []
    for augmentations in (["noise", "scale", "flips"], ["flips", "scale", "noise"]):
        torch.manual_seed(3)
        samples.append(AugmentedSplit(split, augmentations, Preprocessor())[0])
    assert torch.equal(samples[0][0], samples[1][0]) and torch.equal(samples[0][1], samples[1][1])


def test_the_command_line_takes_the_new_augmentations_and_refuses_unknown_ones(capsys):
    assert parse_config(["--augment", "scale", "noise"]).augment == ["scale", "noise"]
    assert parse_config(["--augment", *REAL_IMAGE_AUGMENTATIONS]).augment == list(REAL_IMAGE_AUGMENTATIONS)
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--augment", "sharpen"])
    assert exit_info.value.code == 2
    assert "sharpen" in capsys.readouterr().err


def test_samples_marked_unaugmented_get_no_augmentation():
    plain = split_of(count=2, peak=0.5)
    split = SplitTensors(plain.images, plain.labels, torch.tensor([True, False]))
    dataset = AugmentedSplit(split, ["noise", "flips"], Preprocessor())
    noisy = flipped = 0
    for seed in range(20):
        torch.manual_seed(seed)
        image, labels = dataset[0]
        # The marked sample is itself, normalised (noise is listed): not flipped, no noise added.
        assert torch.equal(labels, split.labels[0]) and torch.allclose(image, encoded(labels))
        image, labels = dataset[1]
        noisy += len(torch.unique(image)) > len(torch.unique(split.images[1]))
        flipped += not torch.equal(labels, split.labels[1])
    assert noisy > 0 and flipped > 0, "the unmarked sample was never augmented"
