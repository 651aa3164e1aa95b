"""BRAL-T, Table 5 row.

CIFAR10-imb: class c kept with probability 0.1(c+1), seed 4666 (A13); |L0| = 1,000,
b = 500, Q = 20,000 (40 rounds), 50 epochs, C = M = 10, λ = 0.25 (A11)."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("cifar10", init_size=1000, budget=500, quota=20000, epochs=50, clusters=10,
                      lam=0.25, model_kwargs={"stem": "cifar"}, augment="crop_flip",
                      train_transform={"name": "keep_probability_imbalance", "seed": 4666})
