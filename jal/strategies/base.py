"""The strategy protocol: ``select(key, ctx, budget) -> indices``, split into score + pick.

A ``Strategy`` is a small NamedTuple of pure functions (the optax ``GradientTransformation``
shape): ``score(key, ctx) -> aux`` runs the model over the pool (timed as *score* by the
loop), ``pick(key, ctx, aux, budget) -> (indices, info)`` chooses the batch (timed as
*select*). Two optional members serve methods that need more than a trained classifier:

* ``fit(key, net, train_config, x, y, labeled, *, mesh=None) -> FitResult`` replaces
  ``jal.fit`` for the target model (methods that train it jointly with heads of their own);
  what it returns in ``FitResult.extra`` reaches ``score``/``pick`` as ``ctx.fit_extra``.
* ``state(key, ctx, prev) -> state`` is called by the loop before ``score`` in every query
  round (``prev`` is ``None`` the first time); the result is ``ctx.state`` for that round and
  is saved in the run's checkpoint, so a killed run resumes to the same result. A state is a
  nested dict of arrays / scalars. What ``pick`` learns that the next rounds need (BRAL-T's
  trained agent) goes back as ``info[NEXT_STATE]``: the loop takes it out of ``info`` and
  checkpoints it as the round's state (a new dict; ``ctx.state`` is never changed in place).

``select_timed`` composes score and pick, checks the result and times both halves; ``select``
and the loop share it.
"""

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from jal.cluster import top_k_unlabeled  # re-exported: jal.strategies.top_k_unlabeled
from jal.models.net import Net, Variables

__all__ = ["Context", "Strategy", "select", "select_timed", "pick", "no_info", "check_budget",
           "top_k_unlabeled", "finalize_indices", "STATE_STREAM", "NEXT_STATE"]

# fold_in constant of a strategy's ``state`` key, derived from the round's selection key so
# that strategies without state see exactly the keys they always did (``jal.run_loop`` and the
# one-round protocol of ``jal.rambo`` both use it).
STATE_STREAM = 0x57A7E
# The ``info`` key under which ``pick`` hands back the state to keep after its round.
NEXT_STATE = "next_state"


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
    mesh: optional ``jal.parallel`` mesh: pool-wide inference and the built-in strategies'
      picks then run split along its ``data`` axis (``mesh=`` of ``jal.cluster``); ``None``
      runs on one device.
    x_val: validation inputs ``[n_val, H, W, C]`` (methods that measure utilities on a
      held-out split: RAMBO, GLISTER) or ``None``.
    y_val: validation labels ``[n_val]`` or ``None``.
    train_config: the ``jal.TrainConfig`` the target model is trained with (methods that
      train classifiers of their own on subsets) or ``None``.
    fit_extra: what the strategy's own ``fit`` returned in ``FitResult.extra`` (e.g. the
      parameters of a loss-prediction head), else ``None``.
    state: the strategy's state in this round (``Strategy.state``), else ``None``.
  """
  net: Net
  variables: Variables
  x: jax.Array
  y: jax.Array
  labeled: jax.Array
  num_classes: int
  chunk_size: int = 1024
  mesh: Any = None
  x_val: Any = None
  y_val: Any = None
  train_config: Any = None
  fit_extra: Any = None
  state: Any = None


class Strategy(NamedTuple):
  """A named query strategy.

  Attributes:
    name: registry name.
    score: ``(key, ctx) -> aux`` pool-wide model work (may return ``None``).
    pick: ``(key, ctx, aux, budget) -> (indices, info)``: ``[budget]`` int indices into the
      pool and a dict of JSON-able diagnostics (``{}`` when there are none); a stateful
      strategy may add ``info[NEXT_STATE]``, its state after this round.
    fit: optional ``(key, net, train_config, x, y, labeled, *, mesh=None) -> FitResult``
      replacing ``jal.fit`` for the target model; ``FitResult.extra`` reaches ``ctx``.
    state: optional ``(key, ctx, prev) -> state`` run before ``score`` in every query round
      (``prev=None`` the first time); checkpointed with the run.
  """
  name: str
  score: Callable[[jax.Array, Context], Any]
  pick: Callable[[jax.Array, Context, Any, int], tuple[Any, dict]]
  fit: Callable[..., Any] | None = None
  state: Callable[[jax.Array, Context, Any], Any] | None = None


def no_info(pick_fn: Callable[[jax.Array, Context, Any, int], Any]
            ) -> Callable[[jax.Array, Context, Any, int], tuple[Any, dict]]:
  """Adapts a ``pick`` that returns only indices to the ``(indices, info)`` contract."""
  def pick_with_empty_info(key, ctx, aux, budget):
    return pick_fn(key, ctx, aux, budget), {}
  return pick_with_empty_info


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
  return select_timed(strategy, key, ctx, budget)[0]


def select_timed(strategy: Strategy, key: jax.Array, ctx: Context, budget: int
                 ) -> tuple[np.ndarray, dict, dict]:
  """:func:`select` with the strategy's diagnostics and the seconds of each half.

  Returns:
    ``(indices, info, seconds)``: ``[budget]`` unique unlabeled indices, the ``info`` dict of
    the strategy's ``pick`` and ``{"score": s, "select": s}`` (wall seconds of ``score``, and
    of ``pick`` with the checks).

  Raises:
    ValueError: if ``budget`` is not in ``[1, #unlabeled]``.
  """
  budget = check_budget(ctx.labeled, budget)
  k_score, k_pick = jax.random.split(key)
  t0 = time.perf_counter()
  aux = jax.block_until_ready(strategy.score(k_score, ctx))
  t1 = time.perf_counter()
  idx, info = pick(strategy, k_pick, ctx, aux, budget)
  return idx, info, {"score": t1 - t0, "select": time.perf_counter() - t1}


def pick(strategy: Strategy, key: jax.Array, ctx: Context, aux: Any, budget: int
         ) -> tuple[np.ndarray, dict]:
  """The second half of ``select``: picks from precomputed ``aux`` and checks the result.

  Returns:
    ``(indices, info)``: exactly ``budget`` unique unlabeled indices (:func:`finalize_indices`)
    and the strategy's diagnostics.

  Raises:
    TypeError: if the strategy's ``pick`` does not return an ``(indices, dict)`` pair.
  """
  k_pick, k_fill = jax.random.split(key)
  out = strategy.pick(k_pick, ctx, aux, budget)
  if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
    raise TypeError(f"strategy {strategy.name!r}: pick must return (indices, info_dict), got "
                    f"{type(out).__name__}")
  idx = jax.block_until_ready(out[0])
  return finalize_indices(k_fill, idx, ctx.labeled, budget), out[1]
