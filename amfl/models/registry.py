"""The one registry of segmentation models by name: presets of the AMFL generator now, the
ten baselines of Table II later. A new model is a new entry here."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from amfl.models.base import SegmentationModel
from amfl.models.discriminator import PatchDiscriminator
from amfl.models.nested_unet import NestedUNet


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its class and the constructor arguments that differ from the defaults."""

    model_class: type[SegmentationModel]
    description: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))


MODELS: dict[str, ModelSpec] = {
    "amfl-paper": ModelSpec(
        NestedUNet,
        "AMFL generator as published: NestedUNet, base width 64, 36.63 M parameters",
        {"base_width": 64},
    ),
    "amfl-small": ModelSpec(
        NestedUNet,
        "AMFL generator at base width 8 (0.57 M parameters), for CPU training and the demo",
        {"base_width": 8},
    ),
}


def create_model(name: str, **overrides: Any) -> SegmentationModel:
    """Build the model registered as ``name`` (case-insensitive); ``overrides`` replace its
    constructor arguments, e.g. ``create_model("amfl-paper", base_width=32)``."""
    try:
        spec = MODELS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}") from None
    return spec.model_class(**{**spec.arguments, **overrides})


def architecture_class(architecture: str) -> type[nn.Module]:
    """The class named ``architecture`` in a saved config.json, among the registered models
    and the discriminator."""
    classes = {spec.model_class.__name__: spec.model_class for spec in MODELS.values()}
    classes[PatchDiscriminator.__name__] = PatchDiscriminator
    try:
        return classes[architecture]
    except KeyError:
        raise ValueError(
            f"config.json names architecture {architecture!r}, which this version of amfl does "
            f"not know; known: {', '.join(sorted(classes))}"
        ) from None
