"""Where the files of an AMFL model folder are, locally or on the Hub, and why one is missing.

A leaf module (it imports no other part of amfl): the Hub mixin of the networks
(``amfl.models.hub_mixin``) and the public loaders (``amfl.hub``, which needs the model
registry) both find files through it, so neither has to import the other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

CONFIG_FILE = constants.CONFIG_NAME
WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE
CARD_FILE = "README.md"
#: config.json key holding the model's class name, e.g. "NestedUNet".
ARCHITECTURE_KEY = "architecture"


def locate_file(model_id: str, filename: str, **download: Any) -> str:
    """Path of ``filename`` in the folder ``model_id``, or downloaded from the Hub repo ``model_id``."""
    if os.path.isdir(model_id):
        path = Path(model_id) / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"model folder {model_id!r} has no {filename}; an AMFL model folder holds "
                f"{CONFIG_FILE} and {WEIGHTS_FILE} (safetensors only, never pickle) as "
                "written by save_pretrained"
            )
        return str(path)
    with explain_download_errors(model_id, filename):
        return hf_hub_download(repo_id=model_id, filename=filename, **download)


@contextlib.contextmanager
def explain_download_errors(model_id: str, filename: str) -> Iterator[None]:
    """Turn huggingface_hub's download errors into one FileNotFoundError a user can act on.

    The original error stays as ``__cause__``, so a caller can tell a file the repository
    lacks (``RemoteEntryNotFoundError``) from a Hub it cannot reach.
    """
    try:
        yield
    except LocalEntryNotFoundError as error:
        if constants.is_offline_mode():
            reason = (
                "HF_HUB_OFFLINE is set, so nothing is downloaded, and the local Hugging Face "
                "cache does not hold it; unset HF_HUB_OFFLINE on a machine with network "
                "access to download it once, or pass a local model folder"
            )
        else:
            reason = (
                "the Hub could not be reached and the local Hugging Face cache does not hold "
                "it; check the network connection, or pass a local model folder"
            )
        raise FileNotFoundError(f"cannot load {filename} of model {model_id!r}: {reason}") from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"cannot load model {model_id!r}: no such model repository on the Hub (if it is "
            "private or gated, log in with `hf auth login` or pass token=...)"
        ) from error
    except RevisionNotFoundError as error:
        raise FileNotFoundError(
            f"cannot load model {model_id!r}: the requested revision does not exist"
        ) from error
    except RemoteEntryNotFoundError as error:
        raise FileNotFoundError(
            f"cannot load model {model_id!r}: the Hub repository has no {filename}; AMFL "
            f"models are saved as {CONFIG_FILE} + {WEIGHTS_FILE} by save_pretrained"
        ) from error
    except HFValidationError as error:
        raise FileNotFoundError(
            f"cannot load model {model_id!r}: it is neither an existing folder nor a valid "
            "Hub id of the form 'owner/name'"
        ) from error
