"""Query strategies behind one signature, ``select(strategy, key, ctx, budget) -> indices``."""

from jal.strategies.base import (
  Context,
  Strategy,
  check_budget,
  finalize_indices,
  no_info,
  pick,
  select,
  select_timed,
  top_k_unlabeled,
)
from jal.strategies.diversity import badge_strategy, coreset_strategy, kmeans_strategy
from jal.strategies.registry import STRATEGIES, get_strategy, register_strategy
from jal.strategies.uncertainty import (
  bald_strategy,
  entropy_strategy,
  least_confidence_strategy,
  margin_strategy,
  random_strategy,
)

__all__ = ["Context", "Strategy", "select", "select_timed", "pick", "no_info", "check_budget",
           "finalize_indices", "top_k_unlabeled", "STRATEGIES", "get_strategy",
           "register_strategy", "learned"]

for _name, _ctor in (("random", random_strategy), ("margin", margin_strategy),
                     ("entropy", entropy_strategy),
                     ("least_confidence", least_confidence_strategy), ("bald", bald_strategy),
                     ("coreset", coreset_strategy), ("kmeans", kmeans_strategy),
                     ("badge", badge_strategy)):
  register_strategy(_name, _ctor)

# The learned baselines (LossPrediction, WAAL, VAAL) register themselves.
from jal.strategies import learned  # noqa: E402  (after the base modules it builds on)
