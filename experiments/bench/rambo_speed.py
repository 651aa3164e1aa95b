r"""Unit costs of a full RAMBO trial's two large phases on this machine (synthetic images).

  python -m experiments.bench.rambo_speed [--config.pool=200] [--config.pairs=800] \
      [--config.subsets=48] [--config.steps=50]

Prints JSON with the time of one inner Adam step of the utility model (ψ over ``pool`` 28×28
images, ``pairs`` pairs, through ``train_plain``), of one hypergradient and λ step (10 CG
steps, through ``train_bilevel`` with T = 1, the inner step subtracted), and of one LeNet-5
utility training of 20 epochs on a random subset of size U{2..pool} (``fit_subsets``, compiles
excluded). The SPEC schedule runs 6,000 inner steps, 60 hypergradients and 1,000 trainings per
trial; ``full_trial_floor_s`` multiplies them out (the real trainings stop early at 99% train
accuracy, ≈ 18 epochs, and pay compiles). ``--config`` is a config of the ``"rambo_speed"``
family (default ``rambo_speed``); the measurement is ``experiments.bench.rambo_costs``.
"""

import json

from experiments import runtime
from experiments.bench.rambo_costs import unit_costs

_CONFIG = runtime.define_config("bench.rambo_speed", default="rambo_speed")


def _main():
  c = _CONFIG.value
  for name, low in (("pool", 2), ("pairs", 1), ("subsets", 1), ("steps", 1)):
    if int(c[name]) < low:
      raise ValueError(f"config.{name} must be >= {low}, got {c[name]}")
  print(json.dumps(unit_costs(int(c.pool), int(c.pairs), int(c.subsets), int(c.steps)),
                   indent=1), flush=True)


if __name__ == "__main__":
  runtime.run(_main, "bench.rambo_speed", _CONFIG)
