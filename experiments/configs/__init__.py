"""One config per protocol; ``get(name)`` returns a fresh dict of settings."""

import importlib

__all__ = ["CONFIGS", "get"]

CONFIGS = ("default", "mnist_lenet", "deepal_mnist_resnet", "smoke")


def get(name: str) -> dict:
  """The settings of protocol ``name`` (a new dict each call)."""
  if name not in CONFIGS:
    raise ValueError(f"unknown config {name!r}; choose from {CONFIGS}")
  module = importlib.import_module(f"experiments.configs.{name}")
  return dict(module.get_config())
