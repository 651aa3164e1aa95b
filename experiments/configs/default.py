"""Default protocol: the embedded digits data, a small MLP, Margin; about a minute on 2 CPU cores.

  python -m experiments.al --config=default --config.strategy.name=badge
"""

from experiments.configs import base


def get_config():
  return base.al_config(
      dataset="digits", model="mlp", model_kwargs={"hidden": (256, 128)}, strategy="margin",
      init_size=20, budget=20, rounds=10, chunk_size=1024, epochs=50, batch_size=32)
