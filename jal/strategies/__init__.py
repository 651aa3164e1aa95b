"""Query strategies behind one signature, ``select(strategy, key, ctx, budget) -> indices``."""

from collections.abc import Callable

from jal.strategies.base import (
  Context,
  Strategy,
  check_budget,
  finalize_indices,
  pick,
  pick_with_info,
  select,
  top_k_unlabeled,
)
from jal.strategies.diversity import badge_strategy, coreset_strategy, kmeans_strategy
from jal.strategies.uncertainty import (
  bald_strategy,
  entropy_strategy,
  least_confidence_strategy,
  margin_strategy,
  random_strategy,
)

__all__ = ["Context", "Strategy", "select", "pick", "pick_with_info", "check_budget",
           "finalize_indices", "top_k_unlabeled", "STRATEGIES", "get_strategy",
           "register_strategy"]

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": random_strategy,
    "margin": margin_strategy,
    "entropy": entropy_strategy,
    "least_confidence": least_confidence_strategy,
    "bald": bald_strategy,
    "coreset": coreset_strategy,
    "kmeans": kmeans_strategy,
    "badge": badge_strategy,
}


def register_strategy(name: str, constructor: Callable[..., Strategy]) -> None:
  """Adds a strategy constructor to the registry (e.g. from ``jal.bralt``)."""
  if name in STRATEGIES:
    raise ValueError(f"strategy {name!r} is already registered")
  STRATEGIES[name] = constructor


def get_strategy(name: str, **kwargs) -> Strategy:
  """Builds the registered strategy ``name`` with its options."""
  if name not in STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
  return STRATEGIES[name](**kwargs)


def _register_method_families() -> None:
  # After the registry exists: jal.bralt's strategies import jal.strategies.base.
  from jal.bralt import BRALT_STRATEGIES
  for name, ctor in BRALT_STRATEGIES.items():
    register_strategy(name, ctor)


_register_method_families()
