"""One config per protocol; ``get(name)`` returns a fresh dict of settings."""

import importlib

__all__ = ["CONFIGS", "get"]

CONFIGS = (
    "default", "mnist_lenet", "deepal_mnist_resnet", "smoke",
    # BRAL-T (issue 3): the reduced CPU protocol and one config per row of Table 5.
    "bralt_digits", "bralt_fmnist_reduced", "bralt_table5_fashion_mnist", "bralt_table5_emnist",
    "bralt_table5_cifar10", "bralt_table5_cifar100", "bralt_table5_cifar10_imb",
    "bralt_table5_cifar10_lt", "bralt_table5_cifar100_lt",
    # RAMBO (issue 4): one-round protocols, run with experiments.one_round.
    "rambo_smoke", "rambo_mnist", "rambo_fmnist", "rambo_cifar10", "rambo_svhn",
)


def get(name: str) -> dict:
  """The settings of protocol ``name`` (a new dict each call)."""
  if name not in CONFIGS:
    raise ValueError(f"unknown config {name!r}; choose from {CONFIGS}")
  module = importlib.import_module(f"experiments.configs.{name}")
  return dict(module.get_config())
