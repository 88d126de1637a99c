"""Hugging Face Hub format of AMFL networks: config.json + model.safetensors + a README.md card.

Built on huggingface_hub's ``PyTorchModelHubMixin``, with four changes a lab tool needs:

- config.json also records the model class under ``"architecture"``, so
  ``amfl.hub.from_pretrained`` rebuilds the right network from a folder or Hub id alone;
- weights load only from safetensors (the mixin would fall back to a pickled
  ``pytorch_model.bin``) and must fit the config exactly: a mismatch is a ValueError naming
  the tensors, not a half-loaded model (the mixin loads with ``strict=False``);
- download failures (offline, unknown id, missing file) say what was missing and what to do;
- the model card is generated from measured numbers passed in, never from placeholders, and
  is rewritten on every save so it cannot describe older weights.

The networks inherit this mixin, so it must not import the model registry (which imports the
networks); ``amfl.hub`` is the public entry that does.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from huggingface_hub import EvalResult, ModelCard, ModelCardData, PyTorchModelHubMixin
from safetensors.torch import load_file
from torch import Tensor, nn

from amfl.hub_files import (
    ARCHITECTURE_KEY,
    CARD_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    explain_download_errors,
    locate_file,
)
from amfl.markdown import markdown_table
from amfl.metrics import METRIC_UNITS

CARD_LIBRARY = "amfl"
CARD_PIPELINE = "image-segmentation"
CARD_TAGS = ("amfl", "chromosome-segmentation", "cytogenetics", "image-segmentation", "pytorch")
PAPER = (
    "L. Mei et al., \"Adversarial Multiscale Feature Learning for Overlapping Chromosome "
    "Segmentation\" (AMFL)"
)
#: How many tensor names a weight-mismatch error lists per kind before summarising.
_LISTED_TENSORS = 8


class AmflHubMixin(PyTorchModelHubMixin):
    """Hub save/load for AMFL networks; mix into an ``nn.Module`` with typed keyword arguments.

    ``save_pretrained(folder, model_card_kwargs={"evaluations": [CardEvaluation(...), ...]})``
    writes config.json, model.safetensors and README.md; ``push_to_hub`` uploads the same.
    """

    #: One paragraph for the model card saying what the network is and where it is used.
    card_summary: ClassVar[str]

    @property
    def hub_config(self) -> dict[str, Any]:
        """Constructor arguments plus the class name: everything needed to rebuild the model."""
        return {**(self._hub_mixin_config or {}), ARCHITECTURE_KEY: type(self).__name__}

    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        config: dict[str, Any] | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Write config.json, model.safetensors and a freshly generated README.md card."""
        config = {**self.hub_config, **(config or {})}
        (Path(save_directory) / CARD_FILE).unlink(missing_ok=True)
        return super().save_pretrained(
            save_directory, config=config, model_card_kwargs=model_card_kwargs, **kwargs
        )

    def generate_model_card(
        self, *, evaluations: Sequence["CardEvaluation"] = (), license: str = "mit", extra_sections: Sequence[str] = (),
    ) -> ModelCard:
        """The card for these weights; see :func:`render_model_card` for the arguments."""
        return render_model_card(
            self.hub_config, summary=self.card_summary, evaluations=evaluations, license=license,
            input_divisor=getattr(self, "input_divisor", None), extra_sections=extra_sections,
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> Self:
        """Load from a local folder or a Hub id; errors say what is missing and what to do."""
        with explain_download_errors(str(pretrained_model_name_or_path), CONFIG_FILE):
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        config: dict[str, Any] | None = None,
        map_location: str = "cpu",
        **model_kwargs: Any,
    ) -> Self:
        weights_path = locate_file(
            model_id,
            WEIGHTS_FILE,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )
        _check_architecture(cls, config, model_id)
        model = cls(**model_kwargs)
        weights = load_file(weights_path, device="cpu")
        _check_weights_fit(model, weights, weights_path)
        model.load_state_dict(weights)
        return model.to(map_location).eval()


def _check_architecture(
    model_class: type[nn.Module], config: Mapping[str, Any] | None, source: str
) -> None:
    """Refuse a folder saved by another class: its tensors would not fit, or worse, would."""
    if config is None:
        raise ValueError(
            f"model {source!r} has no {CONFIG_FILE}; AMFL needs it to rebuild the network "
            "(it records the architecture and its constructor arguments)"
        )
    saved = config.get(ARCHITECTURE_KEY, "<missing>")
    if saved != model_class.__name__:
        raise ValueError(
            f"{CONFIG_FILE} of model {source!r} records architecture {saved!r}, not "
            f"{model_class.__name__!r}; load it with amfl.hub.from_pretrained, which picks "
            "the class from the config"
        )


def _check_weights_fit(model: nn.Module, weights: Mapping[str, Tensor], source: str) -> None:
    """Raise a ValueError naming every tensor that is missing, unexpected or the wrong shape."""
    problems = weight_misfits(model, weights)
    if problems:
        config = getattr(model, "hub_config", {})
        raise ValueError(
            f"weights in {source} do not fit {type(model).__name__} built from {config}: "
            + "; ".join(problems)
            + f". {CONFIG_FILE} and {WEIGHTS_FILE} must come from the same save_pretrained call."
        )


def weight_misfits(model: nn.Module, weights: Mapping[str, Tensor]) -> list[str]:
    """Why ``weights`` cannot be loaded into ``model``, a phrase per kind of problem (missing,
    unexpected, wrong shape) naming the tensors; empty when they fit."""
    return tensor_misfits(model.state_dict(), weights)


def tensor_misfits(expected: Mapping[str, Tensor], weights: Mapping[str, Tensor]) -> list[str]:
    """Why ``weights`` do not hold the tensors of ``expected`` (:func:`weight_misfits`'s phrases)."""
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    wrong_shape = [
        f"{name} (file {tuple(weights[name].shape)}, model {tuple(expected[name].shape)})"
        for name in sorted(expected.keys() & weights.keys())
        if weights[name].shape != expected[name].shape
    ]
    return [
        f"{kind}: {_list_names(names)}"
        for kind, names in (
            ("missing tensors", missing),
            ("unexpected tensors", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if names
    ]


def _list_names(names: list[str]) -> str:
    listed = ", ".join(names[:_LISTED_TENSORS])
    hidden = len(names) - _LISTED_TENSORS
    return f"{listed} and {hidden} more" if hidden > 0 else listed


@dataclass(frozen=True)
class CardEvaluation:
    """Scores measured on one dataset (and subset), and the command that measured them.

    Attributes:
        dataset: Hub id or name of the dataset.
        metrics: name -> value, names from ``amfl.metrics.METRIC_UNITS`` (percent,
            Hausdorff in pixels).
        command: the exact command that produced the scores, so anyone can rerun it.
        split: the split scored.
        subset: which part of the dataset, when it has several (``dataset_config`` in the
            card's ``model-index``), e.g. "overlapping-raw".
    """

    dataset: str
    metrics: Mapping[str, float]
    command: str
    split: str = "test"
    subset: str | None = None

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError(f"no metrics for {self.dataset!r}: a card lists only measured scores")
        unknown = sorted(set(self.metrics) - set(METRIC_UNITS))
        if unknown:
            raise ValueError(f"unknown metric names {unknown}; accepted: {sorted(METRIC_UNITS)}")
        not_finite = {name: value for name, value in self.metrics.items() if not math.isfinite(value)}
        if not_finite:
            raise ValueError(f"metric values must be finite numbers; got {not_finite}")
        if not self.dataset or not self.command:
            raise ValueError(
                "scores on a card need the dataset they were measured on and the command that "
                f"measured them; got dataset={self.dataset!r}, command={self.command!r}"
            )

    @property
    def label(self) -> str:
        return self.dataset + (f" ({self.subset})" if self.subset else "") + f", {self.split}"


def render_model_card(
    config: Mapping[str, Any],
    *,
    summary: str,
    evaluations: Sequence[CardEvaluation] = (),
    license: str = "mit",
    input_divisor: int | None = None,
    extra_sections: Sequence[str] = (),
) -> ModelCard:
    """A model card (YAML metadata + text) stating only what was measured.

    Args:
        config: the saved config.json content (architecture and constructor arguments).
        summary: what the network is, one paragraph.
        evaluations: the measured scores, one entry per dataset (and subset); none: the
            card says the model is not evaluated.
        license: SPDX-style license id of the weights.
        input_divisor: what image height and width must be a multiple of (segmentation models).
        extra_sections: markdown sections appended after the evaluation, such as the saved
            preprocessing the scores were measured through (``amfl.hub.preprocessing_section``).
    """
    architecture = config.get(ARCHITECTURE_KEY, "<missing>")
    arguments = {key: value for key, value in config.items() if key != ARCHITECTURE_KEY}
    model_name = f"AMFL {architecture} ({_format_arguments(arguments)})"
    eval_results = [
        EvalResult(
            task_type=CARD_PIPELINE,
            task_name="Overlapping chromosome segmentation",
            dataset_type=evaluation.dataset,
            dataset_name=evaluation.dataset,
            dataset_config=evaluation.subset,
            dataset_split=evaluation.split,
            metric_type=name,
            metric_name=f"{name} ({METRIC_UNITS[name]})",
            metric_value=round(float(value), 4),
        )
        for evaluation in evaluations
        for name, value in evaluation.metrics.items()
    ]
    datasets = list(dict.fromkeys(evaluation.dataset for evaluation in evaluations))
    card_data = ModelCardData(
        library_name=CARD_LIBRARY,
        license=license,
        pipeline_tag=CARD_PIPELINE,
        tags=list(CARD_TAGS),
        datasets=datasets or None,
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
    )
    sections = [
        f"# {model_name}",
        summary,
        f"From {PAPER}. Classes: 0 background, 1 first chromosome only, 2 second chromosome "
        "only, 3 overlap."
        + (
            f" Input: one grey-level channel scaled to 0..1, height and width padded to a "
            f"multiple of {input_divisor}."
            if input_divisor
            else ""
        ),
        "## Load\n\nWith the `amfl` package, pass this repository's Hub id or a local copy "
        "of it:\n\n```python\nimport amfl.hub\n\nmodel = amfl.hub.from_pretrained(repo_id_or_folder)\n```",
        "## Configuration\n\n"
        + markdown_table(("Argument", "Value"), [(key, str(value)) for key, value in config.items()]),
        _evaluation_section(evaluations),
        *(section.strip("\n") for section in extra_sections),
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _evaluation_section(evaluations: Sequence[CardEvaluation]) -> str:
    """One row per evaluation, one column per metric, then the commands that measured them."""
    if not evaluations:
        return (
            "## Evaluation\n\nNot evaluated yet: no scores have been measured for these "
            "weights, so this card reports none."
        )
    names = list(dict.fromkeys(name for evaluation in evaluations for name in evaluation.metrics))
    header = ("Dataset", *(f"{name} ({METRIC_UNITS[name]})" for name in names))
    rows = [
        (evaluation.label, *(f"{float(evaluation.metrics[name]):.4f}" if name in evaluation.metrics else "-" for name in names))
        for evaluation in evaluations
    ]
    commands = "\n".join(dict.fromkeys(evaluation.command for evaluation in evaluations))
    return (
        "## Evaluation\n\nPer image and per class (background included), averaged over the "
        "four classes, then over images (`amfl.metrics.score_batch`).\n\n"
        + markdown_table(header, rows)
        + f"\n\nMeasured with:\n\n```bash\n{commands}\n```"
    )


def _format_arguments(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(arguments.items()))
