"""Seconds-long smoke protocol on digits (used by the test suite)."""

from experiments.configs import default


def get_config() -> dict:
  c = default.get_config()
  c.update(model_kwargs={"hidden": (32,)}, init_size=20, budget=10, rounds=2, epochs=20)
  return c
