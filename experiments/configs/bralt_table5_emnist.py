"""BRAL-T, Table 5 row.

EMNIST (byclass): |L0| = 1,000, b = 500, Q = 50,000 (100 rounds), 40 epochs, C = M = 62,
λ = 0.25. tfds ``emnist/byclass`` (not available offline: the loader raises)."""

from experiments.configs.bralt_base import bralt_config


def get_config():
  return bralt_config("emnist", init_size=1000, budget=500, quota=50000, epochs=40, clusters=62,
                      lam=0.25, model_kwargs={"stem": "imagenet"}, augment="none",
                      train_transform=None)
