"""Predicting and scoring a split: the one path behind training's validation and test scores
and ``amfl.evaluate``'s tables, so a model scores the same wherever it is scored.

The loader is prepared by the caller's ``Accelerator``, so each process predicts its shard;
``gather_for_metrics`` collects the shards and drops the samples repeated to even out the
last batch, so every process gets the whole split, once, whatever the number of processes.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from amfl.metrics import BatchScores, score_batch
from amfl.preprocessing import Preprocessor


@torch.no_grad()
def predict_labels(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, description: str, progress: bool = True,
    output: Preprocessor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) uint8 label maps (N, H, W) of every sample of a prepared ``loader``
    of (images, labels) batches, on every process; the model is put in eval mode. The
    predictions go through ``output``'s steps on the way out (:meth:`Preprocessor.finish`:
    small parts dropped, stray overlaps merged, cut pieces renamed, names), the model's saved
    preprocessor; None: as the network gives them."""
    model.eval()
    predicted, true, seen = [], [], []
    batches = tqdm(loader, desc=description, leave=False, disable=not (progress and accelerator.is_main_process))
    for images, labels in batches:
        with accelerator.autocast():
            logits = model(images)
        named, truth, inputs = accelerator.gather_for_metrics(
            (logits.argmax(dim=1).to(torch.uint8), labels.to(torch.uint8), images[:, 0].float()))
        predicted.append(named.cpu().numpy())
        true.append(truth.cpu().numpy())
        seen.append(inputs.cpu().numpy())
    labels = np.concatenate(predicted)
    return (labels if output is None else output.finish(labels, np.concatenate(seen))), np.concatenate(true)


def evaluate(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, description: str, progress: bool = True,
    output: Preprocessor | None = None,
) -> BatchScores:
    """The paper's scores (``amfl.metrics.score_batch``) of ``model`` on a prepared loader."""
    return score_batch(*predict_labels(accelerator, model, loader, description, progress, output))
