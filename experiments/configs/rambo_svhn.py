"""RAMBO one-round protocol on SVHN (Table 5): CIFAR10 settings on tfds ``svhn_cropped``."""

from experiments.configs import rambo_cifar10

BUDGETS = rambo_cifar10.BUDGETS


def get_config():
  c = rambo_cifar10.get_config()
  c.data.name = "svhn_cropped"
  return c
