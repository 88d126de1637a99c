"""Load any AMFL model and its preprocessing from a folder or a Hugging Face Hub id, and save
them as one.

    model = amfl.hub.from_pretrained("runs/amfl/model")
    preprocessor = amfl.hub.load_preprocessor("runs/amfl/model", model)
    amfl.hub.save_model_folder(model, "runs/copy", preprocessor)

The public entry of the Hub format. The format itself (config.json + model.safetensors +
README.md card, safetensors only, weights that must fit exactly) is the networks' mixin in
``amfl.models.hub_mixin``; finding files and explaining download failures is
``amfl.hub_files``. This module sits above both and above the model registry, which it needs
to pick the class named in config.json, so nothing it imports imports it back. Every tool
that writes a model folder (the trainer, ``amfl.interpolate``, ``amfl.overlap_sweep --save_to``,
``amfl.evaluate --card``) writes its card here, so every card lists the preprocessing and output
steps saved beside the weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError
from torch import nn

from amfl.hub_files import (
    ARCHITECTURE_KEY,
    CARD_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    explain_download_errors,
    locate_file,
)
from amfl.markdown import markdown_table
from amfl.models.hub_mixin import AmflHubMixin, CardEvaluation, render_model_card, weight_misfits
from amfl.models.registry import architecture_class
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor

__all__ = [
    "ARCHITECTURE_KEY",
    "CARD_FILE",
    "CONFIG_FILE",
    "PREPROCESSOR_FILE",
    "WEIGHTS_FILE",
    "AmflHubMixin",
    "CardEvaluation",
    "from_pretrained",
    "load_preprocessor",
    "locate_file",
    "model_card",
    "preprocessing_section",
    "render_model_card",
    "save_model_folder",
    "weight_misfits",
    "write_model_card",
]


def from_pretrained(
    pretrained_model_name_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    map_location: str = "cpu",
) -> nn.Module:
    """Rebuild any AMFL model (class read from config.json) from a local folder or a Hub id.

    The model comes back in eval mode on ``map_location``.
    """
    source = str(pretrained_model_name_or_path)
    download = {
        "revision": revision,
        "cache_dir": cache_dir,
        "token": token,
        "local_files_only": local_files_only,
        "force_download": force_download,
    }
    config = json.loads(Path(locate_file(source, CONFIG_FILE, **download)).read_text("utf-8"))
    model_class = architecture_class(config.get(ARCHITECTURE_KEY, "<missing>"))
    return model_class.from_pretrained(source, map_location=map_location, **download)


def load_preprocessor(
    pretrained_model_name_or_path: str | Path, model: nn.Module, **download: Any
) -> Preprocessor:
    """The :class:`~amfl.preprocessing.Preprocessor` saved with a model (folder or Hub id).

    A model saved before preprocessing was stored with it has no preprocessor_config.json;
    it gets ``Preprocessor.for_model(model)``: background = border median, automatic
    polarity, pad value 0, at least 128 x 128, the model's input divisor (at least 16) and
    per-image maximum scaling, which is how every such model was trained and served.
    A file that cannot be reached (offline Hub) is an error, not a silent default.
    """
    source = str(pretrained_model_name_or_path)
    if os.path.isdir(source):
        path = Path(source) / PREPROCESSOR_FILE
        return Preprocessor.read(path) if path.is_file() else Preprocessor.for_model(model)
    try:
        with explain_download_errors(source, PREPROCESSOR_FILE):
            path = hf_hub_download(repo_id=source, filename=PREPROCESSOR_FILE, **download)
    except FileNotFoundError as error:
        if isinstance(error.__cause__, RemoteEntryNotFoundError):
            return Preprocessor.for_model(model)
        raise
    return Preprocessor.read(path)


def preprocessing_section(preprocessor: Preprocessor) -> str:
    """A card section with every setting of ``preprocessor``, the way in and the way out, each
    value as ``preprocessor_config.json`` writes it: a reader of the card on the Hub sees which
    steps any scores on it were measured through, not the network alone."""
    rows = [[f"`{name}`", f"`{json.dumps(value)}`"] for name, value in preprocessor.to_dict().items()]
    return (
        "## Preprocessing and output steps\n\n"
        f"`amfl` applies these, saved in `{PREPROCESSOR_FILE}`, around the network "
        "(`amfl.segmentation.Segmenter.from_pretrained`), and any scores on this card were measured "
        "through them; what each one does is in the docstring of `amfl.preprocessing.Preprocessor`.\n\n"
        + markdown_table(["Setting", "Value"], rows) + "\n"
    )


def model_card(model: AmflHubMixin, preprocessor: Preprocessor, evaluations: Sequence[CardEvaluation] = ()) -> ModelCard:
    """The card of ``model`` served with ``preprocessor``: ``evaluations`` (none: not evaluated),
    then the preprocessing they were measured through."""
    return model.generate_model_card(evaluations=evaluations, extra_sections=[preprocessing_section(preprocessor)])


def save_model_folder(
    model: AmflHubMixin, folder: str | Path, preprocessor: Preprocessor, evaluations: Sequence[CardEvaluation] = (),
) -> Path:
    """A ``from_pretrained`` folder: config.json, model.safetensors, ``preprocessor`` and the
    :func:`model_card` listing ``evaluations``."""
    card_kwargs = {"evaluations": list(evaluations), "extra_sections": [preprocessing_section(preprocessor)]}
    model.save_pretrained(folder, model_card_kwargs=card_kwargs)
    preprocessor.save(folder)
    return Path(folder)


def write_model_card(folder: str | Path, evaluations: Sequence[CardEvaluation] = ()) -> Path:
    """Replace the README.md card of a local model folder with its :func:`model_card`, for the
    preprocessing saved there: after the preprocessing changed, or with new scores."""
    model = from_pretrained(folder)
    path = Path(folder) / CARD_FILE
    model_card(model, load_preprocessor(folder, model), evaluations).save(path)
    return path
