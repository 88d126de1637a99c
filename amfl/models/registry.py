"""The one registry of segmentation models by name: presets of the AMFL generator and the
ten baselines of Table II (Section II.D). A new model is a new entry here."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from amfl import paper_tables

from amfl.models.base import SegmentationModel
from amfl.models.bisenet import BiSeNetV1, BiSeNetV2
from amfl.models.deeplab import DeepLabV3Plus
from amfl.models.discriminator import PatchDiscriminator
from amfl.models.enet import ENet
from amfl.models.fastfcn import FastFCN
from amfl.models.nested_unet import NestedUNet
from amfl.models.unet_family import AttUNet, R2AttUNet, R2UNet, UNet


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its class and the constructor arguments that differ from the defaults."""

    model_class: type[SegmentationModel]
    description: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    #: The model's row name in the AMFL paper's tables, when the paper reports it.
    paper_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))


MODELS: dict[str, ModelSpec] = {
    "amfl-paper": ModelSpec(
        NestedUNet,
        "AMFL generator as published: NestedUNet, base width 64, 36.63 M parameters",
        {"base_width": 64},
        paper_name="AMFL",
    ),
    "amfl-small": ModelSpec(
        NestedUNet,
        "AMFL generator at base width 8 (0.57 M parameters), for CPU training (the demo's model widens it to 16)",
        {"base_width": 8},
    ),
    # The baselines of Section II.D / Tables II and IV, at the sizes Table IV reports
    # (deviations and their reasons are in each class docstring).
    "enet": ModelSpec(ENet, "ENet (Paszke et al. 2016), 0.35 M parameters", paper_name="ENet"),
    "bisenetv1": ModelSpec(
        BiSeNetV1,
        "BiSeNet V1 with a ResNet-18 context path, 11.91 M parameters (Table IV 12.43 M)",
        paper_name="BiSeNetV1",
    ),
    "bisenetv2": ModelSpec(
        BiSeNetV2,
        "BiSeNet V2 with the references' 1024-channel head, 3.34 M parameters (Table IV 2.85 M)",
        paper_name="BiSeNetV2",
    ),
    "deeplabv3plus": ModelSpec(
        DeepLabV3Plus,
        "DeepLabV3+ on ResNet-101, output stride 16, 59.33 M parameters",
        paper_name="DeepLabV3+",
    ),
    "fastfcn": ModelSpec(
        FastFCN,
        "FastFCN: ResNet-152 + JPU + PSP head, 100.95 M parameters (Table IV 104.3 M)",
        paper_name="FastFCN",
    ),
    "unet": ModelSpec(UNet, "U-Net, base width 64, 34.53 M parameters", paper_name="UNet"),
    "r2unet": ModelSpec(
        R2UNet, "R2U-Net (recurrent residual U-Net, t = 2), 39.09 M parameters", paper_name="R2UNet"
    ),
    "attunet": ModelSpec(AttUNet, "Attention U-Net, 34.88 M parameters", paper_name="AttUNet"),
    "r2attunet": ModelSpec(
        R2AttUNet,
        "R2AttU-Net (recurrent residual attention U-Net), 39.44 M parameters",
        paper_name="R2AttUNet",
    ),
    "nestedunet": ModelSpec(
        NestedUNet,
        "NestedUNet (UNet++) baseline, base width 64, 36.63 M parameters (Table II trains it "
        "without the GAN)",
        {"base_width": 64},
        paper_name="NestedUNet",
    ),
}

#: Parameter counts the AMFL paper reports in Table IV, by registry name (at in_channels 1,
#: num_classes 4). "amfl-paper" and "nestedunet" share the NestedUNet figure.
TABLE_IV_PARAMETERS: Mapping[str, float] = MappingProxyType(
    {
        name: paper_tables.TABLE_IV[spec.paper_name][0] * 1e6
        for name, spec in MODELS.items()
        if spec.paper_name in paper_tables.TABLE_IV
    }
)
#: Models whose registered size knowingly differs from Table IV by more than 10 %, with the
#: reason (the class docstring has the details).
TABLE_IV_DEVIATIONS: Mapping[str, str] = MappingProxyType(
    {
        "bisenetv2": "the paper does not give the head width; the references' 1024 gives 3.34 M "
        "against Table IV's 2.85 M (+17 %)",
    }
)


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
