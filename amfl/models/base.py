"""What every AMFL segmentation network shares: the input check, prediction and Hub format."""

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from amfl.models.hub_mixin import AmflHubMixin
from amfl.preprocessing import padded_size


class SegmentationModel(nn.Module, AmflHubMixin, ABC):
    """Base of the generator and the baselines: images -> per-class logits.

    Maps (N, in_channels, H, W) images scaled to 0..1 to (N, num_classes, H, W) logits.
    Subclasses set ``input_divisor`` (the product of their downsampling strides) and
    ``in_channels``, and implement ``compute_logits``; ``forward`` checks the input first, so
    every model reports a wrong size the same way.
    """

    #: Height and width must be multiples of this (2 ** number of 2x downsamplings).
    input_divisor: ClassVar[int] = 1
    in_channels: int

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, num_classes, H, W); losses and ``predict`` apply the softmax."""
        self.check_input_shape(images)
        return self.compute_logits(images)

    @abstractmethod
    def compute_logits(self, images: Tensor) -> Tensor:
        """The network itself, on an input already checked by ``check_input_shape``."""

    def check_input_shape(self, images: Tensor) -> None:
        """Raise a ValueError naming the bad shape and the padded size to use instead."""
        name = type(self).__name__
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} expects images shaped (N, {self.in_channels}, H, W); got "
                f"{tuple(images.shape)}"
            )
        height, width = images.shape[-2:]
        divisor = self.input_divisor
        if height % divisor or width % divisor:
            raise ValueError(
                f"{name} needs height and width divisible by {divisor}; got {height}x{width}. "
                f"Pad the images to {padded_size(height, divisor)}x{padded_size(width, divisor)} "
                "(amfl.preprocessing.Preprocessor.prepare does it and returns the padding to crop "
                "the prediction back)."
            )

    @torch.inference_mode()
    def predict(self, images: Tensor) -> Tensor:
        """Class probabilities (N, num_classes, H, W), softmax over classes.

        Switches the model to eval mode first: batch statistics of a single image are not
        the running statistics the network was trained to use.
        """
        self.eval()
        return self(images).softmax(dim=1)
