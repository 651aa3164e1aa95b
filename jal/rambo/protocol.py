"""RAMBO's one-round protocol (SPEC §2.3) for every strategy: one round of the AL loop.

``run_one_round(key, …)`` gives RAMBO, DULO, the null control or a baseline exactly the round
that ``jal.run_loop(key, data, net, tc, strategy, LoopConfig(init_size=k, budget=B,
rounds=1))`` runs: S₀ is the loop's initial set, f on S₀ its round-0 model, the selection
``select_timed`` with the loop's round-0 key, and the reported accuracies those of the round-1
model (``k + B`` labels). The same trial key gives every strategy the same S₀ and f on S₀.

It is a thin protocol over ``jal.strategies.select_timed`` rather than a call of
``jal.run_loop`` because ``jal.loop`` is a higher layer than ``jal.rambo`` (ARCHITECTURE.md,
``tests/test_layout.py``); ``tests/jal/rambo/test_strategy.py`` checks that both give the same
selection and accuracies.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jal.data.dataset import Dataset
from jal.models.net import Net
from jal.rambo.config import ABLATIONS, RamboConfig
from jal.rambo.strategy import ONE_ROUND_STRATEGIES, dulo_strategy, null_strategy, rambo_strategy
from jal.rambo.training import Offline, Stream, offline_samples, stream_key
from jal.strategies import STRATEGIES, Context, Strategy, get_strategy, select_timed
from jal.strategies.base import STATE_STREAM
from jal.train import TrainConfig, accuracy, all_finite, fit

__all__ = ["RamboConfig", "ABLATIONS", "Offline", "BASELINES", "prepare_offline", "trial_s0",
           "trial_score_key", "one_round_strategy", "run_rambo", "run_baseline", "run_dulo",
           "run_null", "run_one_round"]

# jal strategies with a one-round row; lossprediction is RAMBO's LLAL (its own fit, defaults).
BASELINES = ("random", "margin", "badge", "coreset", "lossprediction", "waal", "vaal")


def _round_keys(key: jax.Array, r: int) -> tuple[jax.Array, jax.Array]:
  """``(fit, selection)`` keys of round ``r`` of ``jal.run_loop(key, …)``."""
  _, k_rounds = jax.random.split(key)
  k_fit, k_sel = jax.random.split(jax.random.fold_in(k_rounds, r))
  return k_fit, k_sel


def trial_s0(key: jax.Array, data: Dataset, k: int) -> np.ndarray:
  """Sorted pool indices ``[k]`` of S₀: the initial set of ``jal.run_loop(key, …)``."""
  n = data.x_train.shape[0]
  if not 1 <= k < n:
    raise ValueError(f"k = {k} must be in [1, {n}) (the pool has {n} points)")
  k_init, _ = jax.random.split(key)  # as jal.loop.initial_mask
  return np.sort(np.asarray(jax.random.permutation(k_init, n))[:k])


def trial_score_key(key: jax.Array) -> jax.Array:
  """The key the strategy scores with in ``run_one_round(key, …)`` (and ``run_loop``'s round 0)."""
  return jax.random.split(_round_keys(key, 0)[1])[0]  # (score, pick) as select_timed


def prepare_offline(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
                    cfg: RamboConfig, ot: bool = True) -> Offline:
  """S₀ and the offline pairs that RAMBO and DULO draw in ``run_one_round(key, …)``.

  Pass the result as ``offline=`` to ``run_rambo`` / ``run_dulo`` (or the strategies) of the
  same trial to compute the utility samples once: the results are the same as without it.
  ``ot=False`` skips the OT targets (enough for DULO and the "OT ×" ablations).
  """
  s0 = trial_s0(key, data, cfg.k)
  return offline_samples(stream_key(trial_score_key(key), Stream.OFFLINE), cfg, net, tc,
                         data.x_train, data.y_train, s0, data.x_val, data.y_val,
                         data.num_classes, ot=ot)


def one_round_strategy(name: str, cfg: RamboConfig, *, offline: Offline | None = None,
                       verbose: bool = False) -> Strategy:
  """``rambo`` / ``dulo`` / ``null`` built from ``cfg``, or any other registered strategy
  with its default options (``BASELINES`` are RAMBO's own; GLISTER is App. B.1's)."""
  if name == "rambo":
    return rambo_strategy(cfg, offline=offline, verbose=verbose)
  if name == "dulo":
    return dulo_strategy(cfg, offline=offline)
  if name == "null":
    return null_strategy(cfg)
  if name in BASELINES or name in STRATEGIES:
    return get_strategy(name)
  raise ValueError(f"unknown strategy {name!r}; choose from "
                   f"{sorted({*ONE_ROUND_STRATEGIES, *STRATEGIES})}")


def _check_trained(res, what: str, tc) -> None:
  if not all_finite(res.variables):
    raise FloatingPointError(f"training {what} diverged (non-finite parameters, learning rate "
                             f"{tc.learning_rate:g}); lower the learning rate or check the "
                             "inputs; no selection was made from this model")


def _run(key, data, net, tc, strategy: Strategy, k: int, budget: int,
         keep_aux: bool = False) -> tuple[dict, object]:
  """One round of ``run_loop(key, …, LoopConfig(k, budget, rounds=1))``; the result dict and
  (when ``keep_aux``) the strategy's score aux."""
  n = data.x_train.shape[0]
  if data.x_val is None or len(data.x_val) == 0:
    raise ValueError(f"the one-round protocol reports validation accuracy, but {data.name} has "
                     f"no validation split")
  if budget < 1 or k + budget > n:
    raise ValueError(f"need budget >= 1 and k + budget <= {n}, got k={k}, budget={budget}")
  box = {}
  if keep_aux:
    inner = strategy.score

    def score(kk, ctx):
      box["aux"] = inner(kk, ctx)
      return box["aux"]

    strategy = strategy._replace(score=score)
  fit_fn = strategy.fit or fit
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
  mask = np.zeros(n, bool)
  mask[trial_s0(key, data, k)] = True
  k_fit, k_sel = _round_keys(key, 0)
  t = time.perf_counter()
  f0 = fit_fn(k_fit, net, tc, x, y, jnp.asarray(mask))
  jax.block_until_ready(f0.variables)
  _check_trained(f0, "the classifier on S0", tc)
  timings = {"s0_training": time.perf_counter() - t}
  ctx = Context(net, f0.variables, x, y, jnp.asarray(mask), net.num_classes, x_val=x_val,
                y_val=y_val, train_config=tc, fit_extra=f0.extra)
  if strategy.state is not None:  # as run_loop's round 0 (a first state, prev = None)
    ctx = ctx._replace(state=strategy.state(jax.random.fold_in(k_sel, STATE_STREAM), ctx, None))
  sel, info, secs = select_timed(strategy, k_sel, ctx, budget)
  mask[sel] = True
  t = time.perf_counter()
  f1 = fit_fn(_round_keys(key, 1)[0], net, tc, x, y, jnp.asarray(mask))
  jax.block_until_ready(f1.variables)
  _check_trained(f1, "the final classifier", tc)
  timings = {**info.get("timings", {}), **timings, "score": secs["score"],
             "acquisition": secs["select"], "final_training": time.perf_counter() - t}
  res = {"val_accuracy": accuracy(net, f1.variables, x_val, y_val),
         "test_accuracy": accuracy(net, f1.variables, data.x_test, data.y_test),
         "labeled": int(mask.sum()), "timings": timings, "selected": sel.tolist()}
  if "refinement_accuracies" in info:
    res["refinement_accuracies"] = list(info["refinement_accuracies"])
  return res, box.get("aux")


def run_baseline(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, name: str, k: int,
                 budget: int, s0: np.ndarray | None = None) -> dict:
  """A jal strategy as a one-round selection of ``budget`` points from f trained on S₀.

  ``s0``, when given, must be the trial's S₀ (``trial_s0(key, data, k)``, which every
  strategy run with ``key`` shares); it is only checked.
  """
  if s0 is not None and not np.array_equal(np.sort(np.asarray(s0)), trial_s0(key, data, k)):
    raise ValueError("s0 differs from the trial's S₀ (trial_s0(key, data, k)); the loop draws "
                     "S₀ from the key, so the same key gives every strategy the same S₀")
  return _run(key, data, net, tc, get_strategy(name), k, budget)[0]


def run_rambo(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, cfg: RamboConfig,
              verbose: bool = False, offline: Offline | None = None,
              keep_model: bool = False) -> dict:
  """One RAMBO trial (Alg. 1): offline û₀, τ₁ refinement iterations, greedy-margin, final f.

  ``offline`` (from ``prepare_offline(key, …)``) reuses S₀ and the offline samples; omitted,
  they are computed with the same keys (identical result). ``keep_model`` adds the trained
  utility model (``"set_net"``, ``"utility_params"``) and ``"selected"`` as an array.

  Returns:
    ``{"val_accuracy", "test_accuracy", "labeled", "timings", "selected",
    "refinement_accuracies"}``.
  """
  res, aux = _run(key, data, net, tc, rambo_strategy(cfg, offline=offline, verbose=verbose),
                  cfg.k, cfg.budget, keep_aux=keep_model)
  if keep_model:
    res.update(set_net=aux.set_net, utility_params=aux.params,
               selected=np.asarray(res["selected"]))
  return res


def run_null(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
             cfg: RamboConfig) -> dict:
  """RAMBO's trial with an uninformative utility model (``null_strategy``): the control.

  S₀, f on S₀, the greedy-margin splits and the final training use the keys of
  ``run_rambo(key, …)``; only the choice among the candidate batches differs.
  """
  return _run(key, data, net, tc, null_strategy(cfg), cfg.k, cfg.budget)[0]


def run_dulo(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
             cfg: RamboConfig, offline: Offline | None = None) -> dict:
  """DULO: a regression Deep Sets utility on random subsets of S₀ + stochastic greedy.

  ``offline`` shares S₀ and the utility samples of a RAMBO trial (OT targets are ignored).
  """
  return _run(key, data, net, tc, dulo_strategy(cfg, offline=offline), cfg.k, cfg.budget)[0]


def run_one_round(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, cfg: RamboConfig,
                  strategy: str | Strategy, verbose: bool = False) -> dict:
  """Runs ``strategy`` (``rambo``, ``dulo``, ``null``, one of ``BASELINES`` or a ``Strategy``)
  for one round of ``k = cfg.k``, ``B = cfg.budget``; adds ``seconds`` and ``loadavg``.

  Returns:
    ``{"val_accuracy", "test_accuracy", "labeled", "timings", "selected", "seconds",
    "loadavg"}`` (+ ``"refinement_accuracies"`` for RAMBO). ``timings`` holds the loop's
    phases (``s0_training``, ``score``, ``acquisition``, ``final_training``) and the
    strategy's own (``offline_utilities``, ``offline_ot``, ``offline_fit``, ``augmentation``,
    ``bilevel_training``).
  """
  t = time.perf_counter()
  if not isinstance(strategy, Strategy):
    strategy = one_round_strategy(strategy, cfg, verbose=verbose)
  res = _run(key, data, net, tc, strategy, cfg.k, cfg.budget)[0]
  res["seconds"] = time.perf_counter() - t
  res["loadavg"] = list(os.getloadavg())
  return res
