"""RAMBO one-round protocol on Fashion-MNIST (Table 3): same settings as ``rambo_mnist``."""

from experiments.configs import rambo_mnist

BUDGETS = rambo_mnist.BUDGETS


def get_config() -> dict:
  c = rambo_mnist.get_config()
  c.update(dataset="fashion_mnist")
  return c
