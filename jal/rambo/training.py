"""RAMBO's and DULO's utility models, trained on S₀ (SPEC §2.3 steps 1–3).

Everything here indexes S₀ by position: ``x0 = x[s0]`` with ``s0`` the sorted pool indices of
the labeled set. Randomness comes from one key per trial, split into the named ``Stream`` values.
"""

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jal.models.net import Net
from jal.rambo.bilevel import PairData, train_bilevel, train_plain
from jal.rambo.config import RamboConfig, check_refinement
from jal.rambo.samples import (
  OTTargets,
  interpolate_from_distances,
  interpolate_utility,
  latent_divergence,
  make_ot_targets,
  ot_targets,
  random_pair_masks,
  subset_utilities,
)
from jal.rambo.utility_model import SetNet, make_set_net
from jal.train import TrainConfig

__all__ = ["Stream", "stream_key", "Offline", "offline_samples", "UtilityFit",
           "fit_rambo_utility", "fit_dulo_utility"]


class Stream(enum.IntEnum):
  """Key streams of a utility strategy: ``stream_key(key, stream)`` of the key it scores with.

  Attributes:
    OFFLINE: the offline pairs and their true utilities (``offline_samples``); RAMBO and
      DULO given the same key draw the same ones, which is what lets them share an ``Offline``.
    UTILITY_INIT: the utility model's initial parameters.
    REFINE_ORDER: the order in which S₀′ ⊂ S₁ ⊂ … ⊂ S₀ grows.
    REFINE_FIT: f trained on S_i during the refinement (``fold_in(·, i)``).
    AUGMENT: the augmented pairs of refinement iteration i (``fold_in(·, i)``).
  """
  OFFLINE = 0
  UTILITY_INIT = 1
  REFINE_ORDER = 2
  REFINE_FIT = 3
  AUGMENT = 4


def stream_key(key: jax.Array, stream: Stream) -> jax.Array:
  """The key of ``stream``: ``fold_in(key, stream)``."""
  return jax.random.fold_in(key, int(stream))


class Offline(NamedTuple):
  """S₀ and the offline utility samples of one trial, shareable by RAMBO (any ablation) and DULO.

  Attributes:
    s0: ``[k]`` sorted pool indices of S₀.
    pairs: offline pairs (masks ``[P, k]`` over S₀) with true utilities and OT targets
      normalised by ``scale`` (zeros without OT).
    geom: the OT problem of the targets (``None`` without OT).
    scale: mean offline OT target (the normalisation).
    timings: seconds of ``offline_utilities`` and ``offline_ot``.
  """
  s0: np.ndarray
  pairs: PairData
  geom: OTTargets | None
  scale: float
  timings: dict


def offline_samples(key: jax.Array, cfg: RamboConfig, net: Net, tc: TrainConfig, x: jax.Array,
                    y: jax.Array, s0: np.ndarray, x_val: jax.Array, y_val: jax.Array,
                    num_classes: int, ot: bool = True) -> Offline:
  """N pairs of random subsets of S₀ with true utilities (and normalised OT targets when ``ot``).

  Args:
    key: the ``Stream.OFFLINE`` key.
    cfg: ``offline_pairs``, ``fit_chunk``, ``ot_debiased``.
    net: classifier f.
    tc: its training rule.
    x: pool ``[n, ...]``.
    y: pool labels ``[n]``.
    s0: ``[k]`` pool indices of S₀.
    x_val: validation inputs ``[n_val, ...]``.
    y_val: validation labels ``[n_val]``.
    num_classes: K.
    ot: compute OT targets.

  Returns:
    ``Offline``.
  """
  timings = {}
  s0 = np.asarray(s0)
  x0, y0 = x[s0], y[s0]
  t = time.perf_counter()
  k_pairs, k_util = jax.random.split(key)
  m1, m2 = random_pair_masks(k_pairs, cfg.offline_pairs, jnp.ones(s0.size, bool))
  masks = jnp.concatenate([m1, m2])
  u = subset_utilities(k_util, net, tc, x0, y0, masks, x_val, y_val, cfg.fit_chunk)
  timings["offline_utilities"] = time.perf_counter() - t
  t = time.perf_counter()
  if ot:
    geom = make_ot_targets(x0, y0, x_val, y_val, num_classes, debiased=cfg.ot_debiased)
    targets = np.asarray(ot_targets(geom, masks))
    scale = float(np.mean(targets)) or 1.0
  else:
    geom, targets, scale = None, np.zeros(masks.shape[0], np.float32), 1.0
  timings["offline_ot"] = time.perf_counter() - t
  p = cfg.offline_pairs
  pairs = PairData(m1, m2, jnp.asarray(u[:p]), jnp.asarray(u[p:]),
                   jnp.asarray(targets[:p] / scale), jnp.asarray(targets[p:] / scale),
                   jnp.ones(p, jnp.float32))
  return Offline(s0, pairs, geom, scale, timings)


class UtilityFit(NamedTuple):
  """A trained utility model and how it was trained.

  Attributes:
    set_net: the static utility network.
    params: its trained parameters û.
    refinement_accuracies: validation accuracy of f on S₀′, S₁, …, S₀ (RAMBO; DULO: empty).
    timings: seconds per phase (``offline_utilities``, ``offline_ot``, ``offline_fit`` and,
      for RAMBO, ``augmentation`` and ``bilevel_training``).
  """
  set_net: SetNet
  params: object
  refinement_accuracies: list
  timings: dict


def _mask_of(idx, n: int) -> np.ndarray:
  m = np.zeros(n, bool)
  m[np.asarray(idx)] = True
  return m


def fit_rambo_utility(key: jax.Array, cfg: RamboConfig, net: Net, tc: TrainConfig,
                      x0: jax.Array, y0: jax.Array, x_val: jax.Array, y_val: jax.Array,
                      offline: Offline, log: Callable[..., None] | None = None) -> UtilityFit:
  """RAMBO's utility model (Alg. 1 up to acquisition): offline û₀, then τ₁ refinement iterations.

  Args:
    key: the strategy's key (``Stream.UTILITY_INIT``, ``REFINE_ORDER``, ``REFINE_FIT`` and
      ``AUGMENT`` are drawn from it).
    cfg: the settings (``k1``, ``b``, ``n_aug``, ``utility``, …).
    net: classifier f.
    tc: its training rule.
    x0: S₀ ``[k, ...]``.
    y0: its labels ``[k]``.
    x_val: validation inputs ``[n_val, ...]``.
    y_val: validation labels ``[n_val]``.
    offline: the offline samples of S₀.
    log: progress printer (``print``-like), or ``None``.

  Returns:
    ``UtilityFit``.
  """
  log = log or (lambda *a, **k: None)
  k = x0.shape[0]
  check_refinement(k, cfg.k1, cfg.b)
  u_cfg = cfg.utility
  timings = dict(offline.timings)
  d_off, geom, scale = offline.pairs, offline.geom, offline.scale
  set_net = make_set_net(x0.shape[1:], extractor=cfg.extractor)
  log(f"offline: {cfg.offline_pairs} pairs, mean u {float(jnp.mean(d_off.u1)):.3f}", flush=True)
  t = time.perf_counter()
  params = set_net.init(stream_key(key, Stream.UTILITY_INIT))
  if cfg.offline_bilevel:
    params, _, _ = train_bilevel(set_net, u_cfg, params, x0, d_off)
  else:
    params = train_plain(set_net, u_cfg, params, x0, d_off, cfg.offline_steps)
  timings["offline_fit"] = time.perf_counter() - t

  # Iterative refinement on S₀′ ⊂ S₁ ⊂ … ⊂ S_{τ₁} = S₀ (positions index x0).
  tau1 = (k - cfg.k1) // cfg.b
  order = np.asarray(jax.random.permutation(stream_key(key, Stream.REFINE_ORDER), k))
  k_fit, k_aug = stream_key(key, Stream.REFINE_FIT), stream_key(key, Stream.AUGMENT)
  cap = tau1 * cfg.n_aug
  d = PairData(jnp.zeros((cap, k), bool), jnp.zeros((cap, k), bool),
               *(jnp.zeros(cap, jnp.float32) for _ in range(5)))
  base = 0  # augmented pairs go to rows base + i·n
  if cfg.offline_in_d:  # R7 alternative: D₀ = the offline pairs
    d = PairData(*(jnp.concatenate([a.astype(b.dtype), b]) for a, b in zip(d_off, d)))
    base = d_off.weight.shape[0]

  def fit_val(kk, mask):  # f trained on a subset of S₀, by the utility samples' fast path
    return float(subset_utilities(kk, net, tc, x0, y0, mask[None], x_val, y_val)[0])

  t_train, t_aug = 0.0, 0.0
  cur = _mask_of(order[:cfg.k1], k)
  acc = fit_val(jax.random.fold_in(k_fit, 0), cur)
  lam, accs = None, [acc]
  n = cfg.n_aug
  for i in range(tau1):
    t = time.perf_counter()
    nxt = _mask_of(order[:cfg.k1 + (i + 1) * cfg.b], k)
    acc_next = fit_val(jax.random.fold_in(k_fit, i + 1), nxt)
    src = nxt if cfg.aug_from_next else cur
    m1, m2 = random_pair_masks(jax.random.fold_in(k_aug, i), n, jnp.asarray(src))
    refs = jnp.asarray(np.stack([cur, nxt]))
    if cfg.aug_distance == "sinkhorn":
      dist = latent_divergence(set_net.elements(params, x0), jnp.concatenate([m1, m2]), refs)
      u = interpolate_from_distances(dist[:, 0], dist[:, 1], acc, acc_next)
    else:
      phi = set_net.apply_masks(params, x0, jnp.concatenate([refs, m1, m2])).phi
      u = interpolate_utility(phi[2:], phi[0], phi[1], acc, acc_next)
    ot = (ot_targets(geom, jnp.concatenate([m1, m2])) / scale if geom is not None
          else jnp.zeros(2 * n))
    sl = slice(base + i * n, base + (i + 1) * n)
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
  return UtilityFit(set_net, params, [float(a) for a in accs], timings)


def fit_dulo_utility(key: jax.Array, cfg: RamboConfig, x0: jax.Array,
                     offline: Offline) -> UtilityFit:
  """DULO's regression utility model on the offline pairs (their OT targets are ignored).

  Args:
    key: the strategy's key (``Stream.UTILITY_INIT`` is drawn from it).
    cfg: the settings (``utility`` schedule, ``offline_steps``, ``extractor``).
    x0: S₀ ``[k, ...]``.
    offline: the offline samples of S₀.

  Returns:
    ``UtilityFit`` (no refinement accuracies).
  """
  u_cfg = dataclasses.replace(cfg.utility, ranknet=False, lam_ot=0.0)
  set_net = make_set_net(x0.shape[1:], extractor=cfg.extractor)
  timings = dict(offline.timings)
  t = time.perf_counter()
  params = train_plain(set_net, u_cfg, set_net.init(stream_key(key, Stream.UTILITY_INIT)), x0,
                       offline.pairs, cfg.offline_steps)
  jax.block_until_ready(params)
  timings["offline_fit"] = time.perf_counter() - t
  return UtilityFit(set_net, params, [], timings)
