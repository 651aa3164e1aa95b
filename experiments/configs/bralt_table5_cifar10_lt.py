"""BRAL-T, Table 5 row.

CIFAR10-LT (r = 10; A14 formula n_c = n_max·r^(−c/(K−1))): |L0| = 2,000, b = 500,
Q = 20,000 (40 rounds), 50 epochs, C = M = 10, λ = 1."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("cifar10", init_size=2000, budget=500, quota=20000, epochs=50, clusters=10,
                      lam=1.0, model_kwargs={"stem": "cifar"}, augment="crop_flip",
                      train_transform={"name": "long_tail", "imbalance_ratio": 10, "seed": 0})
