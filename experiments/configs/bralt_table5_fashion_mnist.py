"""BRAL-T, Table 5 row.

FashionMNIST: |L0| = 500, b = 250, Q = 10,000 (40 rounds), 40 epochs, C = M = 10, λ = 1."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("fashion_mnist", init_size=500, budget=250, quota=10000, epochs=40,
                      clusters=10, lam=1.0, model_kwargs={"stem": "imagenet"}, augment="none",
                      train_transform=None)
