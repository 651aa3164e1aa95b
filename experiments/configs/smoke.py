"""Seconds-long smoke protocol on digits (used by the test suite)."""

from experiments.configs import default


def get_config():
  c = default.get_config()
  c.model.kwargs.hidden = (32,)
  c.loop.update(init_size=20, budget=10, rounds=2)
  c.train.epochs = 20
  return c
