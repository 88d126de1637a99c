"""Keeping the processes of a distributed (DDP) run in step: one set of BatchNorm running
statistics before evaluating or saving, and a check that every replica holds the same weights."""

from __future__ import annotations

import hashlib

import torch
from accelerate import Accelerator
from torch import nn


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
