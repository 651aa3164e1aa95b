"""RAMBO, DULO and the null control as Strategies of one query round.

The labeled set of the context is S₀ and ``ctx.variables`` is f trained on it (by the loop);
the utility samples train f on subsets of S₀ with ``ctx.train_config`` and score it on
``ctx.x_val / ctx.y_val``. ``score`` trains the utility model (the expensive part, no pool
work), ``pick`` runs the acquisition over the pool: greedy-margin for RAMBO (Alg. 2) and the
null control, DULO's stochastic block-wise greedy. One round of the AL loop is RAMBO's
protocol::

  jal.run_loop(key, data, net, tc, rambo_strategy(cfg),
               jal.LoopConfig(init_size=cfg.k, budget=cfg.budget, rounds=1))

All three are registered (``jal.get_strategy("rambo")``, ``"dulo"``, ``"null"``); their
constructors take a ``RamboConfig``, a mapping of its fields or the fields as keywords.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from jal.rambo.acquisition import dulo_select, null_select, rambo_select
from jal.rambo.config import RamboConfig, as_rambo_config, check_refinement
from jal.rambo.training import (
  Offline,
  Stream,
  UtilityFit,
  fit_dulo_utility,
  fit_rambo_utility,
  offline_samples,
  stream_key,
)
from jal.strategies import Context, Strategy

__all__ = ["rambo_strategy", "dulo_strategy", "null_strategy", "ONE_ROUND_STRATEGIES"]

Config = RamboConfig | Mapping[str, Any] | None


def _needs_validation(ctx: Context, name: str) -> None:
  missing = [f for f in ("x_val", "y_val", "train_config") if getattr(ctx, f, None) is None]
  if not missing and np.shape(ctx.y_val)[0] == 0:
    missing = ["x_val (empty)"]
  if missing:
    raise ValueError(
        f"{name} trains f on subsets of the labeled set and scores it on a validation split, "
        f"but the context lacks ctx.{', ctx.'.join(missing)}; run it through jal.run_loop on "
        f"a dataset with a validation split, or build the Context with x_val=, y_val= and "
        f"train_config=")


def _s0(ctx: Context) -> np.ndarray:
  return np.flatnonzero(np.asarray(ctx.labeled))


def _offline(key, cfg: RamboConfig, ctx: Context, s0: np.ndarray, offline: Offline | None,
             ot: bool) -> Offline:
  """The given ``offline`` (checked against S₀) or the one drawn from ``Stream.OFFLINE``."""
  if offline is None:
    return offline_samples(stream_key(key, Stream.OFFLINE), cfg, ctx.net, ctx.train_config,
                           ctx.x, ctx.y, s0, ctx.x_val, ctx.y_val, ctx.num_classes, ot=ot)
  if not np.array_equal(np.sort(np.asarray(offline.s0)), s0):
    raise ValueError(f"the shared Offline was drawn for another S₀ ({len(offline.s0)} points) "
                     f"than the labeled set ({s0.size} points); prepare it with the trial's "
                     f"key (jal.rambo.prepare_offline)")
  return offline


def _info(fit: UtilityFit) -> dict:
  return {"refinement_accuracies": list(fit.refinement_accuracies), "timings": dict(fit.timings)}


def rambo_strategy(cfg: Config = None, *, offline: Offline | None = None, verbose: bool = False,
                   **fields: Any) -> Strategy:
  """RAMBO (SPEC §2.3): ``score`` trains û (offline û₀ + τ₁ refinements), ``pick`` runs
  greedy-margin with ``M = m_factor · b`` over f's smallest margins.

  Args:
    cfg: ``RamboConfig`` (or a mapping of its fields); ``k`` and ``budget`` are ignored here
      (|S₀| is the labeled set's size, B the budget asked for), ``k1`` and ``b`` must fit it.
    offline: precomputed offline samples of S₀ (``prepare_offline`` with the trial's key) to
      share with DULO or between ablations; ``None`` draws them from ``Stream.OFFLINE``
      (the same ones).
    verbose: print the refinement's progress.
    **fields: ``RamboConfig`` fields overriding ``cfg``.

  Returns:
    ``Strategy`` ``"rambo"``; its ``score`` aux is a ``UtilityFit`` and its pick info holds
    ``refinement_accuracies`` and ``timings``.
  """
  cfg = as_rambo_config(cfg, **fields)
  log = print if verbose else None

  def score(key, ctx: Context) -> UtilityFit:
    _needs_validation(ctx, "rambo")
    s0 = _s0(ctx)
    check_refinement(s0.size, cfg.k1, cfg.b)
    off = _offline(key, cfg, ctx, s0, offline, ot=bool(cfg.utility.lam_ot))
    return fit_rambo_utility(key, cfg, ctx.net, ctx.train_config, ctx.x[s0], ctx.y[s0],
                             ctx.x_val, ctx.y_val, off, log)

  def pick(key, ctx: Context, aux: UtilityFit, budget: int):
    idx = rambo_select(key, aux.set_net, aux.params, ctx.net, ctx.variables, ctx.x,
                       ctx.labeled, budget, cfg.b, cfg.m_factor * cfg.b, ctx.chunk_size)
    return idx, _info(aux)

  return Strategy("rambo", score, pick)


def dulo_strategy(cfg: Config = None, *, offline: Offline | None = None,
                  **fields: Any) -> Strategy:
  """DULO (Wang, Chen & Jia 2023): a regression Deep Sets utility fitted on the offline pairs
  of S₀ (``score``) and stochastic block-wise greedy over the pool (``pick``).

  Args:
    cfg: ``RamboConfig`` (or a mapping of its fields): ``offline_pairs``, ``offline_steps``,
      ``utility`` (RankNet and OT are switched off), ``b``, ``dulo_candidates``, …
    offline: precomputed offline samples of S₀ (e.g. a RAMBO trial's; OT targets are
      ignored); ``None`` draws them from ``Stream.OFFLINE`` (the same ones).
    **fields: ``RamboConfig`` fields overriding ``cfg``.

  Returns:
    ``Strategy`` ``"dulo"``.
  """
  cfg = as_rambo_config(cfg, **fields)

  def score(key, ctx: Context) -> UtilityFit:
    _needs_validation(ctx, "dulo")
    s0 = _s0(ctx)
    off = _offline(key, cfg, ctx, s0, offline, ot=False)
    return fit_dulo_utility(key, cfg, ctx.x[s0], off)

  def pick(key, ctx: Context, aux: UtilityFit, budget: int):
    idx = dulo_select(key, aux.set_net, aux.params, ctx.x, ctx.labeled, budget, cfg.b,
                      cfg.dulo_candidates)
    return idx, _info(aux)

  return Strategy("dulo", score, pick)


def null_strategy(cfg: Config = None, **fields: Any) -> Strategy:
  """RAMBO's control: greedy-margin with an uninformative utility (``null_select``).

  Given the key of ``rambo_strategy`` it draws the same candidate splits; only the choice
  among the candidate batches differs (no utility model, no validation split needed).

  Args:
    cfg: ``RamboConfig`` (or a mapping of its fields): ``b``, ``m_factor``.
    **fields: ``RamboConfig`` fields overriding ``cfg``.

  Returns:
    ``Strategy`` ``"null"``.
  """
  cfg = as_rambo_config(cfg, **fields)

  def score(key, ctx: Context) -> None:
    del key, ctx

  def pick(key, ctx: Context, aux: None, budget: int):
    del aux
    idx = null_select(key, ctx.net, ctx.variables, ctx.x, ctx.labeled, budget, cfg.b,
                      cfg.m_factor * cfg.b, ctx.chunk_size)
    return idx, {}

  return Strategy("null", score, pick)


ONE_ROUND_STRATEGIES = {"rambo": rambo_strategy, "dulo": dulo_strategy, "null": null_strategy}
