"""Flax NNX models returning ``(logits, embedding)``, and their functional wrapper."""

from jal.models.lenet import LeNet5
from jal.models.mlp import MLP
from jal.models.net import MODELS, Net, Variables, make_net
from jal.models.resnet import STEMS, ResNet18

__all__ = ["MLP", "LeNet5", "ResNet18", "STEMS", "MODELS", "Net", "Variables", "make_net"]
