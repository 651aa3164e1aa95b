"""The strategy registry: a dict of constructors plus ``register_strategy``.

It imports no method family. The classic strategies register themselves in
``jal.strategies``; every family package (``jal.bralt``, ``jal.rambo``, …) registers its own
on import, and ``import jal`` imports them all.
"""

from collections.abc import Callable

from jal.strategies.base import Strategy

__all__ = ["STRATEGIES", "register_strategy", "get_strategy"]

STRATEGIES: dict[str, Callable[..., Strategy]] = {}


def register_strategy(name: str, constructor: Callable[..., Strategy]) -> None:
  """Adds a strategy constructor to the registry.

  Raises:
    ValueError: if ``name`` is already registered.
  """
  if name in STRATEGIES:
    raise ValueError(f"strategy {name!r} is already registered")
  STRATEGIES[name] = constructor


def get_strategy(name: str, **kwargs) -> Strategy:
  """Builds the registered strategy ``name`` with its options.

  Raises:
    ValueError: for an unknown name (the message lists the registered ones).
  """
  if name not in STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
  return STRATEGIES[name](**kwargs)
