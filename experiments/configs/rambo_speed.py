"""Unit costs of a RAMBO trial (``python -m experiments.bench.rambo_speed``).

``pool``: |S0|, the images ψ runs over per step; ``pairs``: utility pairs in D; ``subsets``:
LeNet trainings timed; ``steps``: inner steps timed.
"""

from ml_collections import ConfigDict


def get_config():
  return ConfigDict({"binary": "rambo_speed", "pool": 200, "pairs": 800, "subsets": 48,
                     "steps": 50})
