"""The strategy protocol: ``select(key, ctx, budget) -> indices``, split into score + pick.

A ``Strategy`` is a small NamedTuple of pure functions (the optax ``GradientTransformation``
shape): ``score(key, ctx) -> aux`` runs the model over the pool (timed as *score* by the
loop), ``pick(key, ctx, aux, budget) -> [budget] indices`` chooses the batch (timed as
*select*). ``select`` composes the two and checks the result.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from jal.cluster import top_k_unlabeled  # re-exported: jal.strategies.top_k_unlabeled
from jal.models.net import Net, Variables

__all__ = ["Context", "Strategy", "select", "pick", "pick_with_info", "check_budget",
           "top_k_unlabeled", "finalize_indices"]


class Context(NamedTuple):
  """What a strategy may look at in one round.

  Attributes:
    net: the static target network.
    variables: the target model trained on the current labeled set.
    x: pool inputs ``[n, H, W, C]`` (fixed size across rounds).
    y: pool labels ``[n]``; strategies may only read entries where ``labeled`` is True.
    labeled: ``[n]`` bool mask of the labeled set.
    num_classes: ``K``.
    chunk_size: rows per chunk for pool-wide inference.
    mesh: optional ``jal.sharding`` mesh: pool-wide inference and the built-in strategies'
      picks then run split along its ``data`` axis (``mesh=`` of ``jal.cluster``); ``None`` runs
      on one device.
  """
  net: Net
  variables: Variables
  x: jax.Array
  y: jax.Array
  labeled: jax.Array
  num_classes: int
  chunk_size: int = 1024
  mesh: Any = None


class Strategy(NamedTuple):
  """A named query strategy.

  Attributes:
    name: registry name.
    score: ``(key, ctx) -> aux`` pool-wide model work (may return ``None``).
    pick: ``(key, ctx, aux, budget) -> [budget]`` int indices into the pool, or
      ``(indices, info)`` with a dict of JSON-able diagnostics (:func:`pick_with_info`).
  """
  name: str
  score: Callable[[jax.Array, Context], Any]
  pick: Callable[[jax.Array, Context, Any, int], Any]


def check_budget(labeled: Any, budget: int) -> int:
  """Validates ``budget`` against the unlabeled count and returns it as an ``int``."""
  n_unlabeled = int(np.size(labeled) - np.count_nonzero(np.asarray(labeled)))
  try:
    ok = int(budget) == budget and budget >= 1
  except (TypeError, ValueError, OverflowError):
    ok = False
  if not ok:
    raise ValueError(f"budget must be a positive integer, got {budget!r}")
  if budget > n_unlabeled:
    raise ValueError(f"budget {budget} exceeds the {n_unlabeled} unlabeled points of the pool")
  return int(budget)


def finalize_indices(key: jax.Array, indices: Any, labeled: Any, budget: int) -> np.ndarray:
  """Returns exactly ``budget`` unique unlabeled indices, keeping ``indices``' order.

  Duplicates and labeled entries are dropped; any shortfall (e.g. empty k-means clusters) is
  filled uniformly at random from the remaining unlabeled rows.
  """
  labeled = np.asarray(labeled)
  idx = np.asarray(indices).astype(np.int64).ravel()
  _, first = np.unique(idx, return_index=True)
  idx = idx[np.sort(first)]
  idx = idx[~labeled[idx]][:budget]
  if idx.size < budget:
    taken = labeled.copy()
    taken[idx] = True
    rest = np.flatnonzero(~taken)
    perm = np.asarray(jax.random.permutation(key, rest.size))
    idx = np.concatenate([idx, rest[perm[: budget - idx.size]]])
  return idx


def select(strategy: Strategy, key: jax.Array, ctx: Context, budget: int) -> np.ndarray:
  """Runs ``strategy`` and returns ``[budget]`` unique indices of unlabeled pool rows.

  Raises:
    ValueError: if ``budget`` is not in ``[1, #unlabeled]``.
  """
  budget = check_budget(ctx.labeled, budget)
  k_score, k_pick = jax.random.split(key)
  return pick(strategy, k_pick, ctx, strategy.score(k_score, ctx), budget)


def pick(strategy: Strategy, key: jax.Array, ctx: Context, aux: Any, budget: int) -> np.ndarray:
  """The second half of ``select``: picks from precomputed ``aux`` and checks the result."""
  return pick_with_info(strategy, key, ctx, aux, budget)[0]


def pick_with_info(strategy: Strategy, key: jax.Array, ctx: Context, aux: Any, budget: int
                   ) -> tuple[np.ndarray, dict]:
  """:func:`pick` plus the strategy's diagnostics.

  A strategy's ``pick`` may return ``(indices, info)`` with ``info`` a dict of JSON-able
  diagnostics (e.g. BRAL-T's RL / selection seconds and reward-net losses); plain index
  arrays give ``{}``.
  """
  k_pick, k_fill = jax.random.split(key)
  out = strategy.pick(k_pick, ctx, aux, budget)
  idx, info = out if isinstance(out, tuple) and isinstance(out[1], dict) else (out, {})
  idx = jax.block_until_ready(idx)
  return finalize_indices(k_fill, idx, ctx.labeled, budget), info
