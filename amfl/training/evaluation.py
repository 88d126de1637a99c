"""Scoring a generator on a split, sharded over the processes and gathered for the metrics."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from amfl.metrics import BatchScores, score_batch


@torch.no_grad()
def predict_labels(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, description: str, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) label maps of every sample of a prepared ``loader``, on every process.

    ``gather_for_metrics`` drops the samples repeated to even out the last batch, so the
    result is the split itself, whatever the number of processes.
    """
    model.eval()
    predicted, true = [], []
    batches = tqdm(loader, desc=description, leave=False, disable=not (progress and accelerator.is_main_process))
    for images, labels in batches:
        with accelerator.autocast():
            logits = model(images)
        pair = accelerator.gather_for_metrics((logits.argmax(dim=1).to(torch.uint8), labels.to(torch.uint8)))
        predicted.append(pair[0].cpu().numpy())
        true.append(pair[1].cpu().numpy())
    return np.concatenate(predicted), np.concatenate(true)


def evaluate(
    accelerator: Accelerator, model: nn.Module, loader: DataLoader, description: str, progress: bool = True
) -> BatchScores:
    """The paper's scores (``amfl.metrics.score_batch``) of ``model`` on a prepared loader."""
    return score_batch(*predict_labels(accelerator, model, loader, description, progress))


def broadcast_buffers(accelerator: Accelerator, model: nn.Module) -> None:
    """Give every process the main process's buffers (BatchNorm running statistics).

    DDP all-reduces gradients, so parameters agree, but each process updates its running
    statistics from its own shard; evaluating or saving then needs one set of them.
    """
    if accelerator.num_processes > 1:
        for buffer in accelerator.unwrap_model(model).buffers():
            torch.distributed.broadcast(buffer.data, src=0)


def replicas_agree(accelerator: Accelerator, model: nn.Module) -> bool:
    """Whether every process holds bit-identical parameters and buffers (a DDP sanity check)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(accelerator.unwrap_model(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    local = torch.tensor(list(digest.digest()), dtype=torch.uint8, device=accelerator.device)
    digests = accelerator.gather(local[None])
    return bool((digests == digests[0]).all())
