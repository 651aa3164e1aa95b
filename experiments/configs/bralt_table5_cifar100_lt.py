"""BRAL-T, Table 5 row.

CIFAR100-LT (r = 10, A14): |L0| = 2,000, b = 500, Q = 20,000 (40 rounds), 60 epochs,
C = M = 100, λ = 0.25."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("cifar100", init_size=2000, budget=500, quota=20000, epochs=60, clusters=100,
                      lam=0.25, model_kwargs={"stem": "cifar"}, augment="crop_flip",
                      train_transform={"name": "long_tail", "imbalance_ratio": 10, "seed": 0})
