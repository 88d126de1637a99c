"""Training AMFL on Accelerate: configuration, data, the adversarial step, the run loop."""

from amfl.training.config import TrainConfig, parse_config
from amfl.training.loop import TrainResult, train
from amfl.training.step import NonFiniteLossError

__all__ = ["NonFiniteLossError", "TrainConfig", "TrainResult", "parse_config", "train"]
