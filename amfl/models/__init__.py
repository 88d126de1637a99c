"""AMFL networks: the NestedUNet generator, the PatchGAN discriminator, the baselines of
Section II.D, and the model registry."""

from amfl.models.base import SegmentationModel
from amfl.models.bisenet import BiSeNetV1, BiSeNetV2
from amfl.models.deeplab import DeepLabV3Plus
from amfl.models.discriminator import PatchDiscriminator, create_discriminator
from amfl.models.enet import ENet
from amfl.models.fastfcn import FastFCN
from amfl.models.nested_unet import NestedUNet
from amfl.models.registry import MODELS, ModelSpec, create_model
from amfl.models.unet_family import AttUNet, R2AttUNet, R2UNet, UNet

__all__ = [
    "MODELS",
    "AttUNet",
    "BiSeNetV1",
    "BiSeNetV2",
    "DeepLabV3Plus",
    "ENet",
    "FastFCN",
    "ModelSpec",
    "NestedUNet",
    "PatchDiscriminator",
    "R2AttUNet",
    "R2UNet",
    "SegmentationModel",
    "UNet",
    "create_discriminator",
    "create_model",
]
