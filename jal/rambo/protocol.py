"""RAMBO's one-round protocol (SPEC §2.3) and the one-round baselines (random, margin, badge,
coreset, DULO), each returning validation/test accuracy of f trained on ``k + B`` labels.
"""

import dataclasses
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jal.data.dataset import Dataset
from jal.models.net import Net
from jal.rambo.acquisition import dulo_select, null_select, rambo_select
from jal.rambo.bilevel import BilevelConfig, PairData, train_bilevel, train_plain
from jal.rambo.samples import (
  AUG_DISTANCES,
  OTTargets,
  interpolate_from_distances,
  interpolate_utility,
  latent_divergence,
  make_ot_targets,
  ot_targets,
  random_pair_masks,
  subset_utilities,
)
from jal.rambo.utility_model import make_set_net
from jal.strategies import Context, get_strategy, select
from jal.train import TrainConfig, accuracy, fit

__all__ = ["RamboConfig", "ABLATIONS", "Offline", "prepare_offline", "trial_s0", "run_rambo",
           "run_baseline", "run_dulo", "run_null", "run_one_round", "BASELINES"]

BASELINES = ("random", "margin", "badge", "coreset")

# (bilevel, OT, RankNet) of the 8 rows of Tables 3/4.
ABLATIONS = tuple((b, o, r) for b in (True, False) for o in (True, False) for r in (True, False))


@dataclasses.dataclass(frozen=True)
class RamboConfig:
  """One-round settings (defaults: MNIST/FMNIST of B.7 with the SPEC REC readings).

  Attributes:
    k: |S₀|.
    budget: B.
    k1: |S₀′|, the start of the iterative refinement.
    b: batch size of both the refinement and greedy-margin (τ₁ = (k − k1) / b).
    n_aug: n, augmented pairs per iteration (R4).
    offline_pairs: N, pairs with ground-truth utilities for û₀ (R3).
    offline_steps: full-batch Adam steps fitting û₀ (plain training, R7: parameters only).
    offline_bilevel: fit û₀ with the bilevel scheme instead.
    offline_in_d: keep the offline pairs (true utilities) in D for every refinement iteration
      (R7 alternative; REC: D₀ = {}, the offline pairs only warm-start the parameters).
    m_factor: M = m_factor · b (R1).
    aug_from_next: draw augmented pairs from S_{i+1} (R2 REC) instead of S_i.
    fit_chunk: classifiers evaluated together on the validation set.
    extractor: ψ of the utility model (``"auto"``, ``"cnn"``, ``"mlp"``).
    utility: bilevel/OT/RankNet switches and the schedule (R6: 20 outer steps per iteration).
    dulo_candidates: DULO's random candidates per block.
    ot_debiased: OT targets as Sinkhorn divergences (SPEC REC) or plain entropic OT costs.
    aug_distance: d(ξ_j, S_i) of Eq. 4 (R5): ``"euclidean"`` between pooled φ (REC) or
      ``"sinkhorn"``, the Sinkhorn divergence between the per-element latent embeddings ψ of
      ξ_j and S_i (footnote 1; ``samples.latent_divergence``, ε = 0.1 · mean cost over S₀).
  """
  k: int = 200
  budget: int = 500
  k1: int = 50
  b: int = 50
  n_aug: int = 50
  offline_pairs: int = 500
  offline_steps: int = 500
  offline_bilevel: bool = False
  offline_in_d: bool = False
  m_factor: int = 10
  aug_from_next: bool = True
  fit_chunk: int = 50
  extractor: str = "auto"
  utility: BilevelConfig = BilevelConfig()
  dulo_candidates: int = 500
  ot_debiased: bool = True
  aug_distance: str = "euclidean"

  def __post_init__(self):
    if self.aug_distance not in AUG_DISTANCES:
      raise ValueError(f"aug_distance must be one of {AUG_DISTANCES}, got {self.aug_distance!r}")
    if (self.k - self.k1) % self.b or self.k1 < 2 or self.k1 >= self.k:
      raise ValueError(f"need 2 <= k1 < k and (k - k1) % b == 0, got k={self.k}, "
                       f"k1={self.k1}, b={self.b}")
    if self.budget % self.b:
      raise ValueError(f"budget {self.budget} must be a multiple of b = {self.b}")


def _initial(key, data: Dataset, k: int) -> np.ndarray:
  n = data.x_train.shape[0]
  if k >= n:
    raise ValueError(f"k = {k} must be smaller than the pool ({n})")
  return np.asarray(jax.random.permutation(key, n)[:k])


def _final(key, data, net, tc, labeled, timings):
  t = time.perf_counter()
  v = fit(key, net, tc, data.x_train, data.y_train, jnp.asarray(labeled)).variables
  timings["final_training"] = time.perf_counter() - t
  return {"val_accuracy": accuracy(net, v, data.x_val, data.y_val),
          "test_accuracy": accuracy(net, v, data.x_test, data.y_test),
          "labeled": int(np.sum(labeled))}


def _mask_of(idx, n):
  m = np.zeros(n, bool)
  m[np.asarray(idx)] = True
  return m


def run_baseline(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, name: str, k: int,
                 budget: int, s0: np.ndarray | None = None) -> dict:
  """A jal strategy as a one-round selection of ``budget`` points from f trained on S₀.

  ``s0`` (pool indices) overrides the S₀ drawn from ``key`` (to share it across strategies).
  """
  k0, k_fit, k_sel, k_fin = jax.random.split(key, 4)
  timings = {}
  s0 = _initial(k0, data, k) if s0 is None else np.asarray(s0)
  labeled = _mask_of(s0, data.x_train.shape[0])
  t = time.perf_counter()
  v = fit(k_fit, net, tc, data.x_train, data.y_train, jnp.asarray(labeled)).variables
  ctx = Context(net, v, data.x_train, data.y_train, jnp.asarray(labeled), data.num_classes)
  sel = select(get_strategy(name), k_sel, ctx, budget)
  timings["acquisition"] = time.perf_counter() - t
  labeled[sel] = True
  return {**_final(k_fin, data, net, tc, labeled, timings), "timings": timings}


def _offline(key, cfg, data, net, tc, x0, y0, lam_ot, timings):
  """N pairs of random subsets of S₀ with true utilities and (normalised) OT targets."""
  t = time.perf_counter()
  k_pairs, k_util = jax.random.split(key)
  m1, m2 = random_pair_masks(k_pairs, cfg.offline_pairs, jnp.ones(cfg.k, bool))
  masks = jnp.concatenate([m1, m2])
  u = subset_utilities(k_util, net, tc, x0, y0, masks, data.x_val, data.y_val, cfg.fit_chunk)
  timings["offline_utilities"] = time.perf_counter() - t
  t = time.perf_counter()
  if lam_ot:
    geom = make_ot_targets(x0, y0, data.x_val, data.y_val, data.num_classes,
                           debiased=cfg.ot_debiased)
    ot = np.asarray(ot_targets(geom, masks))
    scale = float(np.mean(ot)) or 1.0
  else:
    geom, ot, scale = None, np.zeros(masks.shape[0], np.float32), 1.0
  timings["offline_ot"] = time.perf_counter() - t
  p = cfg.offline_pairs
  data_off = PairData(m1, m2, jnp.asarray(u[:p]), jnp.asarray(u[p:]), jnp.asarray(ot[:p] / scale),
                      jnp.asarray(ot[p:] / scale), jnp.ones(p, jnp.float32))
  return data_off, geom, scale


class Offline(NamedTuple):
  """S₀ and the offline utility samples of one trial, shareable by RAMBO (any ablation) and DULO."""
  s0: np.ndarray      # [k] pool indices of S₀
  pairs: PairData     # offline pairs with true utilities and normalised OT targets
  geom: OTTargets | None
  scale: float        # mean offline OT target (the normalisation)
  timings: dict


def trial_s0(key: jax.Array, data: Dataset, k: int) -> np.ndarray:
  """Pool indices ``[k]`` of the S₀ that ``run_rambo(key, …)`` and ``prepare_offline`` draw."""
  return _initial(jax.random.split(key, 8)[0], data, k)


def prepare_offline(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
                    cfg: RamboConfig, ot: bool = True) -> Offline:
  """Draws S₀ and the offline pairs as ``run_rambo(key, …)`` does (OT targets when ``ot``)."""
  ks = jax.random.split(key, 8)
  timings = {}
  s0 = trial_s0(key, data, cfg.k)
  d_off, geom, scale = _offline(ks[1], cfg, data, net, tc, data.x_train[s0], data.y_train[s0],
                                float(ot), timings)
  return Offline(s0, d_off, geom, scale, timings)


def run_rambo(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, cfg: RamboConfig,
              verbose: bool = False, offline: Offline | None = None,
              keep_model: bool = False) -> dict:
  """One RAMBO trial (Alg. 1): offline û₀, τ₁ refinement iterations, greedy-margin, final f.

  ``offline`` (from ``prepare_offline(key, …)``) reuses S₀ and the offline samples; omitted,
  they are computed here with the same keys (identical result). ``keep_model`` adds the
  trained utility model (``"set_net"``, ``"utility_params"``) to the result.

  Returns:
    ``{"val_accuracy", "test_accuracy", "labeled", "timings", "refinement_accuracies"}``.
  """
  ks = jax.random.split(key, 8)
  log = print if verbose else (lambda *a, **k: None)
  u_cfg = cfg.utility
  if offline is None:
    offline = prepare_offline(key, data, net, tc, cfg, ot=bool(u_cfg.lam_ot))
  timings = dict(offline.timings)
  s0, d_off, geom, scale = offline.s0, offline.pairs, offline.geom, offline.scale
  x0 = data.x_train[s0]
  set_net = make_set_net(x0.shape[1:], extractor=cfg.extractor)
  log(f"offline: {cfg.offline_pairs} pairs, mean u {float(jnp.mean(d_off.u1)):.3f}", flush=True)
  t = time.perf_counter()
  params = set_net.init(ks[2])
  if cfg.offline_bilevel:
    params, _, _ = train_bilevel(set_net, u_cfg, params, x0, d_off)
  else:
    params = train_plain(set_net, u_cfg, params, x0, d_off, cfg.offline_steps)
  timings["offline_fit"] = time.perf_counter() - t

  # Iterative refinement on S₀′ ⊂ S₁ ⊂ … ⊂ S_{τ₁} = S₀ (positions index x0).
  tau1 = (cfg.k - cfg.k1) // cfg.b
  order = np.asarray(jax.random.permutation(ks[3], cfg.k))
  cap = tau1 * cfg.n_aug
  d = PairData(jnp.zeros((cap, cfg.k), bool), jnp.zeros((cap, cfg.k), bool),
               *(jnp.zeros(cap, jnp.float32) for _ in range(5)))
  base = 0  # augmented pairs go to rows base + i·n
  if cfg.offline_in_d:  # R7 alternative: D₀ = the offline pairs
    d = PairData(*(jnp.concatenate([a.astype(b.dtype), b]) for a, b in zip(d_off, d)))
    base = d_off.weight.shape[0]

  y0 = data.y_train[s0]

  def fit_val(kk, mask):  # f trained on a subset of S₀, by the utility samples' fast path
    return float(subset_utilities(kk, net, tc, x0, y0, mask[None], data.x_val,
                                  data.y_val)[0])

  t_train, t_aug = 0.0, 0.0
  cur = _mask_of(order[:cfg.k1], cfg.k)
  acc = fit_val(jax.random.fold_in(ks[4], 0), cur)
  lam, accs = None, [acc]
  for i in range(tau1):
    t = time.perf_counter()
    nxt = _mask_of(order[:cfg.k1 + (i + 1) * cfg.b], cfg.k)
    acc_next = fit_val(jax.random.fold_in(ks[4], i + 1), nxt)
    src = nxt if cfg.aug_from_next else cur
    m1, m2 = random_pair_masks(jax.random.fold_in(ks[5], i), cfg.n_aug, jnp.asarray(src))
    refs = jnp.asarray(np.stack([cur, nxt]))
    if cfg.aug_distance == "sinkhorn":
      dist = latent_divergence(set_net.elements(params, x0), jnp.concatenate([m1, m2]), refs)
      u = interpolate_from_distances(dist[:, 0], dist[:, 1], acc, acc_next)
    else:
      phi = set_net.apply_masks(params, x0, jnp.concatenate([refs, m1, m2])).phi
      u = interpolate_utility(phi[2:], phi[0], phi[1], acc, acc_next)
    ot = (ot_targets(geom, jnp.concatenate([m1, m2])) / scale if geom is not None
          else jnp.zeros(2 * cfg.n_aug))
    sl = slice(base + i * cfg.n_aug, base + (i + 1) * cfg.n_aug)
    n = cfg.n_aug
    d = PairData(d.masks1.at[sl].set(m1), d.masks2.at[sl].set(m2), d.u1.at[sl].set(u[:n]),
                 d.u2.at[sl].set(u[n:]), d.ot1.at[sl].set(ot[:n]), d.ot2.at[sl].set(ot[n:]),
                 d.weight.at[sl].set(1.0))
    t_aug += time.perf_counter() - t
    t = time.perf_counter()
    params, lam, losses = train_bilevel(set_net, u_cfg, params, x0, d, lam)
    jax.block_until_ready(params)
    t_train += time.perf_counter() - t
    log(f"iteration {i + 1}/{tau1}: acc {acc:.3f} -> {acc_next:.3f}, "
        f"outer loss {float(losses[-1]) if losses.size else float('nan'):.4f}", flush=True)
    cur, acc = nxt, acc_next
    accs.append(acc)
  timings["augmentation"] = t_aug
  timings["bilevel_training"] = t_train

  # Greedy-margin from f trained on all of S₀.
  t = time.perf_counter()
  labeled = _mask_of(s0, data.x_train.shape[0])
  v0 = fit(ks[6], net, tc, data.x_train, data.y_train, jnp.asarray(labeled)).variables
  sel = rambo_select(ks[7], set_net, params, net, v0, data.x_train, labeled, cfg.budget, cfg.b,
                     cfg.m_factor * cfg.b)
  timings["acquisition"] = time.perf_counter() - t
  labeled[sel] = True
  res = _final(jax.random.fold_in(key, 99), data, net, tc, labeled, timings)
  res = {**res, "timings": timings, "refinement_accuracies": [float(a) for a in accs]}
  if keep_model:
    res.update(set_net=set_net, utility_params=params, selected=np.asarray(sel))
  return res


def run_null(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
             cfg: RamboConfig) -> dict:
  """RAMBO's trial with an uninformative utility model (``null_select``): the control.

  S₀, the classifier f whose margins rank the candidates, the greedy-margin splits and the
  final training use the keys of ``run_rambo(key, …)``; only the choice among the candidate
  batches differs (no utility model, no offline samples).
  """
  ks = jax.random.split(key, 8)
  timings = {}
  s0 = trial_s0(key, data, cfg.k)
  t = time.perf_counter()
  labeled = _mask_of(s0, data.x_train.shape[0])
  v0 = fit(ks[6], net, tc, data.x_train, data.y_train, jnp.asarray(labeled)).variables
  sel = null_select(ks[7], net, v0, data.x_train, labeled, cfg.budget, cfg.b,
                    cfg.m_factor * cfg.b)
  timings["acquisition"] = time.perf_counter() - t
  labeled[sel] = True
  return {**_final(jax.random.fold_in(key, 99), data, net, tc, labeled, timings),
          "timings": timings}


def run_dulo(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig,
             cfg: RamboConfig, offline: Offline | None = None) -> dict:
  """DULO: a regression Deep Sets utility on random subsets of S₀ + stochastic greedy.

  ``offline`` shares S₀ and the utility samples of a RAMBO trial (OT targets are ignored).
  """
  ks = jax.random.split(key, 5)
  timings = {}
  if offline is None:
    s0 = _initial(ks[0], data, cfg.k)
    d_off, _, _ = _offline(ks[1], cfg, data, net, tc, data.x_train[s0], data.y_train[s0], 0.0,
                           timings)
  else:
    s0, d_off, timings = offline.s0, offline.pairs, dict(offline.timings)
  x0 = data.x_train[s0]
  u_cfg = dataclasses.replace(cfg.utility, ranknet=False, lam_ot=0.0)
  set_net = make_set_net(x0.shape[1:], extractor=cfg.extractor)
  t = time.perf_counter()
  params = train_plain(set_net, u_cfg, set_net.init(ks[2]), x0, d_off, cfg.offline_steps)
  timings["offline_fit"] = time.perf_counter() - t
  t = time.perf_counter()
  labeled = _mask_of(s0, data.x_train.shape[0])
  sel = dulo_select(ks[3], set_net, params, data.x_train, labeled, cfg.budget, cfg.b,
                    cfg.dulo_candidates)
  timings["acquisition"] = time.perf_counter() - t
  labeled[sel] = True
  return {**_final(ks[4], data, net, tc, labeled, timings), "timings": timings}


def run_one_round(key: jax.Array, data: Dataset, net: Net, tc: TrainConfig, cfg: RamboConfig,
                  strategy: str, verbose: bool = False) -> dict:
  """Runs ``strategy`` (``rambo``, ``dulo``, ``null`` or one of ``BASELINES``); adds
  ``seconds``/load."""
  t = time.perf_counter()
  if strategy == "rambo":
    res = run_rambo(key, data, net, tc, cfg, verbose)
  elif strategy == "dulo":
    res = run_dulo(key, data, net, tc, cfg)
  elif strategy == "null":
    res = run_null(key, data, net, tc, cfg)
  elif strategy in BASELINES:
    res = run_baseline(key, data, net, tc, strategy, cfg.k, cfg.budget)
  else:
    raise ValueError(f"unknown strategy {strategy!r}; choose from "
                     f"{['rambo', 'dulo', 'null', *BASELINES]}")
  res["seconds"] = time.perf_counter() - t
  res["loadavg"] = list(os.getloadavg())
  return res
