"""BRAL-T, Table 5 row.

CIFAR10: |L0| = 1,000, b = 500, Q = 40,000 (80 rounds), 50 epochs, C = M = 10, λ = 1;
crop+flip augmentation (A10). tfds ``cifar10``."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("cifar10", init_size=1000, budget=500, quota=40000, epochs=50, clusters=10,
                      lam=1.0, model_kwargs={"stem": "cifar"}, augment="crop_flip",
                      train_transform=None)
