"""The real-image training set: Pommier pairs beside pairs drawn from the ADIR metaphases.

Two ADIR sources can join the Pommier training pairs, both from the training cases of the
recorded case split only (:func:`amfl.data.adir.case_split`):

- synthetic pairs with unlabelled neighbours (:func:`amfl.data.synthetic.synthesise` with
  ``REAL_NEIGHBOURS``), made from the training cases' isolated chromosomes;
- with ``--synthetic_touching_count``, synthetic pairs that only touch (``kind="touching"``),
  raw with neighbours and again masked, since every Pommier and synthetic overlapping pair
  overlaps;
- the real training pairs (overlapping and touching) as 128 x 128 windows of their
  metaphases (:mod:`amfl.data.real_windows`), repeated so that 133 pairs weigh enough
  beside thousands of others (augmentation makes each repeat different); with
  ``--touching_repeats``, the pairs that only touch come again, since every Pommier pair
  overlaps and a Pommier-heavy mixture learns to paint overlap on touching pairs; with
  ``--masked_repeats``, all of them come again masked (every pixel off the pair set to 0),
  the input the real benchmark's masked crops and the whole-metaphase path give the model;
  with ``--masked_overlapping_repeats``, the overlapping ones come again masked on top.

With ``--distil_pommier`` the Pommier pairs are marked ``anchored``: the generator is held
to its starting model's output on them (:mod:`amfl.losses.distillation`).

With ``--clean_pommier`` the Pommier pairs are not augmented: they already look like the
Pommier test pairs, and the augmentations (even scale, flips and turns: measured in
``results/real-image/README.md``) are there to make the ADIR pairs varied.

With either source, the real validation-split pairs (as windows) become a second
validation set, and the epoch kept is the one with the best mean of the two sets' Dice, so
the model chosen is good on real pairs without losing the Pommier ones. The real test
pairs are never read here: they are ``amfl.evaluate``'s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from amfl.data.adir import list_metaphases
from amfl.data.pairs import OverlapPairs
from amfl.data.real_pairs import RealPair, extract_real_pairs
from amfl.data.real_windows import real_windows
from amfl.data.synthetic import REAL_NEIGHBOURS, ingredients_from, synthesise
from amfl.preprocessing import Preprocessor
from amfl.training.config import TrainConfig
from amfl.training.data import SplitTensors, TrainingData, load_training_data

#: Name of the second validation set in the log and on the progress line.
REAL_VALIDATION = "real"


def uses_adir(config: TrainConfig) -> bool:
    """Whether the run trains on ADIR-derived pairs (and so also selects on real ones)."""
    return config.synthetic_count > 0 or config.synthetic_touching_count > 0 or config.real_repeats > 0


def load_run_data(config: TrainConfig, progress: bool = True) -> TrainingData:
    """The data a run of ``config`` trains on: the Pommier splits, with the ADIR sources
    when it asks for them."""
    data = load_training_data(config, progress=progress)
    return add_adir_sources(data, config, progress) if uses_adir(config) else data


def concatenate(parts: list[SplitTensors]) -> SplitTensors:
    """One split of ``parts`` in order, each sample keeping its ``unaugmented`` mark and,
    when any part has them, its ``anchored`` mark."""
    anchored = _joined_marks(parts, "anchored") if any(part.anchored is not None for part in parts) else None
    return SplitTensors(
        torch.cat([part.images for part in parts]), torch.cat([part.labels for part in parts]),
        _joined_marks(parts, "unaugmented"), anchored,
    )


def _joined_marks(parts: list[SplitTensors], name: str) -> torch.Tensor:
    """The ``name`` marks of ``parts`` in order, False for a part without them."""
    return torch.cat([
        getattr(part, name) if getattr(part, name) is not None else torch.zeros(len(part), dtype=torch.bool) for part in parts
    ])


def repeated(windows: OverlapPairs, times: int, preprocessor: Preprocessor) -> SplitTensors:
    """``windows`` ``times`` over, in order (augmentation makes each repeat different)."""
    tiled = OverlapPairs(np.tile(windows.images, (times, 1, 1)), np.tile(windows.labels, (times, 1, 1)))
    return SplitTensors.from_pairs(tiled, preprocessor)


def windows_of_kind(windows: OverlapPairs, pairs: list[RealPair], kind: str) -> OverlapPairs:
    """The windows of ``pairs`` (in the same order) whose pair is of ``kind``."""
    return windows.subset(np.array([pair.cluster.kind == kind for pair in pairs]))


def masked_windows(windows: OverlapPairs) -> OverlapPairs:
    """``windows`` with every pixel off the pair set to 0, as the real benchmark's ``masked``
    crops and the whole-metaphase path's pair crops are made."""
    return OverlapPairs(np.where(windows.labels > 0, windows.images, 0).astype(windows.images.dtype), windows.labels)


def add_adir_sources(data: TrainingData, config: TrainConfig, progress: bool = True) -> TrainingData:
    """``data`` (the Pommier splits) with the ADIR sources of ``config`` added to its
    training split and the real validation pairs as the second validation set; the
    Pommier training pairs are cut to ``config.pommier_train_count`` when given."""
    metaphases = list_metaphases(config.adir_dir)
    real = extract_real_pairs(metaphases, progress=progress)
    preprocessor: Preprocessor = data.preprocessor
    pommier = data.train
    if config.pommier_train_count is not None:
        pommier = SplitTensors(pommier.images[: config.pommier_train_count], pommier.labels[: config.pommier_train_count])
    if config.clean_pommier:
        pommier = dataclasses.replace(pommier, unaugmented=torch.ones(len(pommier), dtype=torch.bool))
    if config.distil_pommier:
        pommier = dataclasses.replace(pommier, anchored=torch.ones(len(pommier), dtype=torch.bool))
    parts, composition = [pommier], {"pommier": len(pommier)}
    ingredients = ingredients_from(metaphases) if config.synthetic_count or config.synthetic_touching_count else None
    if config.synthetic_count:
        synthetic = synthesise(config.synthetic_count, ingredients, seed=config.seed, neighbours=REAL_NEIGHBOURS)
        parts.append(SplitTensors.from_pairs(synthetic, preprocessor))
        composition["synthetic_with_neighbours"] = len(synthetic)
    if config.synthetic_touching_count:
        # Another seed than the overlapping pairs', so the two sets pose different singles.
        touching = synthesise(
            config.synthetic_touching_count, ingredients, seed=config.seed + 1, neighbours=REAL_NEIGHBOURS, kind="touching"
        )
        parts.append(SplitTensors.from_pairs(touching, preprocessor))
        parts.append(SplitTensors.from_pairs(masked_windows(touching), preprocessor))
        composition["synthetic_touching_with_neighbours"] = composition["synthetic_touching_masked"] = len(touching)
    if config.real_repeats:
        pairs = real.select(split="train")
        windows = real_windows(pairs, metaphases)
        parts.append(repeated(windows, config.real_repeats, preprocessor))
        composition["real_training_windows"] = len(parts[-1])
        composition["distinct_real_training_pairs"] = len(windows)
        if config.touching_repeats:  # the config refuses it without real_repeats
            parts.append(repeated(windows_of_kind(windows, pairs, "touching"), config.touching_repeats, preprocessor))
            composition["extra_touching_windows"] = len(parts[-1])
        if config.masked_repeats:  # the config refuses it without real_repeats
            parts.append(repeated(masked_windows(windows), config.masked_repeats, preprocessor))
            composition["masked_windows"] = len(parts[-1])
        if config.masked_overlapping_repeats:  # the config refuses it without real_repeats
            overlapping = windows_of_kind(windows, pairs, "overlapping")
            parts.append(repeated(masked_windows(overlapping), config.masked_overlapping_repeats, preprocessor))
            composition["extra_masked_overlapping_windows"] = len(parts[-1])
    validation = SplitTensors.from_pairs(real_windows(real.select(split="validation"), metaphases), preprocessor)
    composition["real_validation_pairs"] = len(validation)
    return dataclasses.replace(
        data, train=concatenate(parts), extra_validation={REAL_VALIDATION: validation}, composition=composition,
    )
