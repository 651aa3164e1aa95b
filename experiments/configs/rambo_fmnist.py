"""RAMBO one-round protocol on Fashion-MNIST (Table 3): same settings as ``rambo_mnist``."""

from experiments.configs import rambo_mnist

BUDGETS = rambo_mnist.BUDGETS


def get_config():
  c = rambo_mnist.get_config()
  c.data.name = "fashion_mnist"
  return c
