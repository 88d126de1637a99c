"""The training run's data: the paper's splits as network-ready tensors, and augmentation.

Images go through ``amfl.data.protocol.model_arrays`` with the run's
:class:`~amfl.preprocessing.Preprocessor` (background, polarity, pad to 128 x 128, scale to
0..1): the preprocessing inference applies, saved with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from amfl.data.card import DataOrigin, DatasetFacts, measure_facts
from amfl.data.dataset import load_pairs
from amfl.data.pairs import OverlapPairs
from amfl.data.protocol import Splits, model_arrays, split_pairs
from amfl.metrics import NUM_CLASSES
from amfl.models import MODELS
from amfl.preprocessing import Preprocessor
from amfl.training.config import TrainConfig

#: Intensity jitter: each image is multiplied by a factor drawn from [1 - x, 1 + x].
JITTER_AMPLITUDE = 0.1


@dataclass(frozen=True)
class SplitTensors:
    """Images (N, 1, H, W) float32 in 0..1 and labels (N, H, W) int64 of one split."""

    images: Tensor
    labels: Tensor

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
    samples (those with overlap pixels), as in the paper. ``facts`` feed the dataset card."""

    train: SplitTensors
    validation: SplitTensors
    test: SplitTensors
    facts: DatasetFacts | None = None
    #: The uncapped splits, for exporting the dataset with the model.
    splits: Splits | None = None
    #: How the images were prepared; saved with the model for inference.
    preprocessor: Preprocessor = Preprocessor()


def training_preprocessor(config: TrainConfig) -> Preprocessor:
    """The preprocessing of a run: the defaults with ``--image_pad_value``, divisible as the
    chosen generator needs; when fine-tuning (``--init_from``), the one saved with the
    starting model, which its weights were trained for (a different pad value is refused)."""
    model_class = MODELS[config.model].model_class
    if config.init_from is None:
        return Preprocessor.for_model(model_class, pad_value=config.image_pad_value)
    import amfl.hub

    saved = amfl.hub.load_preprocessor(config.init_from, model_class)
    if saved.pad_value != config.image_pad_value:
        raise ValueError(
            f"--init_from {config.init_from} was trained with image pad value {saved.pad_value:g} "
            f"(its {amfl.hub.PREPROCESSOR_FILE}), this run asks for {config.image_pad_value:g}; "
            f"fine-tuning keeps the model's preprocessing: pass --image_pad_value {saved.pad_value:g}"
        )
    return saved


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
        tensors(splits.train), tensors(splits.validation), tensors(splits.test_scored), facts, splits,
        preprocessor,
    )


class AugmentedSplit(Dataset):
    """Training samples with the chosen random augmentations applied per sample.

    Flips and 90-degree rotations move image and labels together (the classes stay the same:
    which chromosome is "1" depends on the label map, not on orientation). Jitter scales
    the intensities only, then clips to 0..1.
    """

    def __init__(self, split: SplitTensors, augmentations: list[str]) -> None:
        self.split = split
        self.augmentations = frozenset(augmentations)
        if "rot90" in self.augmentations and split.images.shape[-1] != split.images.shape[-2]:
            raise ValueError(f"rot90 augmentation needs square images; got {tuple(split.images.shape[-2:])}")

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, labels = self.split.images[index], self.split.labels[index]
        if "flips" in self.augmentations:
            if torch.rand(()) < 0.5:
                image, labels = image.flip(-1), labels.flip(-1)
            if torch.rand(()) < 0.5:
                image, labels = image.flip(-2), labels.flip(-2)
        if "rot90" in self.augmentations:
            turns = int(torch.randint(0, 4, ()))
            image, labels = image.rot90(turns, (-2, -1)), labels.rot90(turns, (-2, -1))
        if "jitter" in self.augmentations:
            factor = 1 + JITTER_AMPLITUDE * (2 * torch.rand(()) - 1)
            image = (image * factor).clamp(0, 1)
        return image, labels


def training_set(split: SplitTensors, augmentations: list[str]) -> Dataset:
    return AugmentedSplit(split, augmentations) if augmentations else TensorDataset(split.images, split.labels)


def evaluation_set(split: SplitTensors) -> Dataset:
    return TensorDataset(split.images, split.labels)

