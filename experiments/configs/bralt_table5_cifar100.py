"""BRAL-T, Table 5 row.

CIFAR100: |L0| = 1,000, b = 500, Q = 40,000 (80 rounds), 60 epochs, C = M = 100,
λ = 0.25. tfds ``cifar100``."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("cifar100", init_size=1000, budget=500, quota=40000, epochs=60, clusters=100,
                      lam=0.25, model_kwargs={"stem": "cifar"}, augment="crop_flip",
                      train_transform=None)
