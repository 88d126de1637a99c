"""The training run's data: the paper's splits as network-ready tensors, and augmentation.

Images go through ``amfl.data.protocol.model_arrays`` with the run's
:class:`~amfl.preprocessing.Preprocessor` (background, polarity, pad to 128 x 128, scale to
0..1): the preprocessing inference applies, saved with the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from amfl.data.card import DataOrigin, DatasetFacts, measure_facts
from amfl.data.dataset import load_pairs
from amfl.data.pairs import OverlapPairs
from amfl.data.protocol import Splits, model_arrays, split_pairs
from amfl.metrics import NUM_CLASSES
from amfl.models import MODELS
from amfl.naming import PAIR_NAMINGS
from amfl.preprocessing import Preprocessor
from amfl.training.augment import AUGMENTATIONS, PHOTOMETRIC, PHOTOMETRIC_PROBABILITY, random_crop
from amfl.training.config import TrainConfig


@dataclass(frozen=True)
class SplitTensors:
    """Images (N, 1, H, W) float32 in 0..1 and labels (N, H, W) int64 of one split."""

    images: Tensor
    labels: Tensor
    #: (N,) bool, or None for all False: samples that get no augmentation (a crop still
    #: applies), because they already look like their test split (``--clean_pommier``).
    unaugmented: Tensor | None = None
    #: (N,) bool, or None when no sample is: samples on which the generator is held to its
    #: starting model's output (``--distil_pommier``); the training set then yields this
    #: mark as a third element of every sample.
    anchored: Tensor | None = None

    @classmethod
    def from_pairs(cls, pairs: OverlapPairs, preprocessor: Preprocessor) -> SplitTensors:
        images, labels = model_arrays(pairs, preprocessor)
        return cls(torch.from_numpy(images), torch.from_numpy(labels))

    def __len__(self) -> int:
        return len(self.images)

    def class_pixel_counts(self) -> Tensor:
        return torch.bincount(self.labels.reshape(-1), minlength=NUM_CLASSES)


@dataclass(frozen=True)
class TrainingData:
    """What a run trains, selects and scores on. ``test`` holds only the scored test
    samples (those with overlap pixels), as in the paper; ``validation`` holds the validation
    samples with overlap, so that an epoch or weight chosen on it is chosen for the test's
    score (a class found in one map only costs the image diagonal in the Hausdorff distance,
    which rewards removing invented overlap on samples the test never scores). ``facts``
    feed the dataset card."""

    train: SplitTensors
    validation: SplitTensors
    test: SplitTensors
    facts: DatasetFacts | None = None
    #: The uncapped splits, for exporting the dataset with the model.
    splits: Splits | None = None
    #: How the images were prepared; saved with the model for inference.
    preprocessor: Preprocessor = Preprocessor()
    #: Further validation sets by name (the real pairs, :mod:`amfl.training.mixture`): the
    #: epoch kept is the one with the best mean Dice over ``validation`` and these.
    extra_validation: Mapping[str, SplitTensors] = field(default_factory=dict)
    #: Training samples per source, when the training split mixes sources.
    composition: Mapping[str, int] = field(default_factory=dict)


def training_preprocessor(config: TrainConfig) -> Preprocessor:
    """The preprocessing of a run: the defaults with ``--image_pad_value``, divisible as the
    chosen generator needs; when fine-tuning (``--init_from``), the one saved with the
    starting model, which its weights were trained for (a different pad value is refused).
    Either way, the output is named as ``--pair_naming`` trains it (:mod:`amfl.naming`)."""
    model_class = MODELS[config.model].model_class
    naming = PAIR_NAMINGS[config.pair_naming]
    if config.init_from is None:
        return Preprocessor.for_model(model_class, pad_value=config.image_pad_value, naming=naming)
    import amfl.hub

    saved = amfl.hub.load_preprocessor(config.init_from, model_class)
    if saved.pad_value != config.image_pad_value:
        raise ValueError(
            f"--init_from {config.init_from} was trained with image pad value {saved.pad_value:g} "
            f"(its {amfl.hub.PREPROCESSOR_FILE}), this run asks for {config.image_pad_value:g}; "
            f"fine-tuning keeps the model's preprocessing: pass --image_pad_value {saved.pad_value:g}"
        )
    return dataclasses.replace(saved, naming=naming)


def load_training_data(config: TrainConfig, progress: bool = True) -> TrainingData:
    """The rebuilt set (or ``config.h5``) split by the paper's protocol with ``config.seed``."""
    pairs = load_pairs(
        config.h5, cleaned=not config.raw_labels, source_dir=config.data_dir,
        cache_path=config.dataset_cache, progress=progress,
    )
    splits = split_pairs(pairs, seed=config.seed)
    origin = DataOrigin.h5(config.h5) if config.h5 else DataOrigin.rebuild()
    return from_splits(splits, config, measure_facts(splits, origin, config.seed, labels_cleaned=not config.raw_labels))


def from_splits(splits: Splits, config: TrainConfig, facts: DatasetFacts | None = None) -> TrainingData:
    preprocessor = training_preprocessor(config)

    def tensors(pairs: OverlapPairs) -> SplitTensors:
        return SplitTensors.from_pairs(pairs.subset(slice(config.max_samples)), preprocessor)

    return TrainingData(
        tensors(splits.train), tensors(splits.validation_scored), tensors(splits.test_scored), facts, splits,
        preprocessor,
    )


class AugmentedSplit(Dataset):
    """Training samples with the chosen random augmentations (:mod:`amfl.training.augment`)
    applied per sample, in that module's order.

    Geometric ones move image and labels together (the classes stay the same: which
    chromosome is "1" depends on size, not on orientation or position). Each photometric
    one is applied with probability PHOTOMETRIC_PROBABILITY. Samples the split marks
    ``unaugmented`` get none of them. When any photometric one is chosen, every
    image is normalised again by ``preprocessor``, as inference would normalise it. With
    ``crop_size``, a random window of that side is cut last, from the normalised sample.
    A split with ``anchored`` marks yields each sample's mark after its labels.
    """

    def __init__(self, split: SplitTensors, augmentations: list[str], preprocessor: Preprocessor, crop_size: int | None = None) -> None:
        side = min(split.images.shape[-2:])
        if crop_size is not None and crop_size > side:
            raise ValueError(f"crop_size {crop_size} is larger than the training samples ({tuple(split.images.shape[-2:])})")
        unknown = sorted(set(augmentations) - AUGMENTATIONS.keys())
        if unknown:
            raise ValueError(f"unknown augmentations {unknown}; known: {sorted(AUGMENTATIONS)}")
        if "rot90" in augmentations and split.images.shape[-1] != split.images.shape[-2]:
            raise ValueError(f"rot90 augmentation needs square images; got {tuple(split.images.shape[-2:])}")
        self.split = split
        self.steps = [(name, AUGMENTATIONS[name]) for name in AUGMENTATIONS if name in augmentations]
        self.renormalise = not PHOTOMETRIC.isdisjoint(augmentations)
        self.preprocessor = preprocessor
        self.crop_size = crop_size

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        image, labels = self.split.images[index], self.split.labels[index]
        clean = self.split.unaugmented is not None and bool(self.split.unaugmented[index])
        for name, augmentation in self.steps:
            if clean or (name in PHOTOMETRIC and torch.rand(()) >= PHOTOMETRIC_PROBABILITY):
                continue
            image, labels = augmentation(image, labels)
        if self.renormalise:
            image = torch.from_numpy(self.preprocessor.normalise(image.numpy()))
        if self.crop_size is not None:
            image, labels = random_crop(image, labels, self.crop_size)
        sample = image.contiguous(), labels.contiguous()
        return sample if self.split.anchored is None else (*sample, self.split.anchored[index])


def training_set(split: SplitTensors, augmentations: list[str], preprocessor: Preprocessor, crop_size: int | None = None) -> Dataset:
    """The samples a training loader draws: (image, labels), and the ``anchored`` mark when
    the split has marks."""
    if not augmentations and crop_size is None:
        marks = () if split.anchored is None else (split.anchored,)
        return TensorDataset(split.images, split.labels, *marks)
    return AugmentedSplit(split, augmentations, preprocessor, crop_size)


def evaluation_set(split: SplitTensors) -> Dataset:
    return TensorDataset(split.images, split.labels)

