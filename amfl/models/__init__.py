"""AMFL networks: the NestedUNet generator, the PatchGAN discriminator, and the model registry."""

from amfl.models.base import SegmentationModel
from amfl.models.discriminator import PatchDiscriminator, create_discriminator
from amfl.models.nested_unet import NestedUNet
from amfl.models.registry import MODELS, ModelSpec, create_model

__all__ = [
    "MODELS",
    "ModelSpec",
    "NestedUNet",
    "PatchDiscriminator",
    "SegmentationModel",
    "create_discriminator",
    "create_model",
]
