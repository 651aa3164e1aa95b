"""Diagnostics of the one-round and BRAL-T methods (``rambo_diagnose``, ``bralt_diagnose``).

No flags here: the binaries read them and call these functions.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

import jal
from experiments import build
from jal.bralt import diagnostics, trustset
from jal.bralt.strategy import balanced_top, bral_t_strategy

__all__ = ["bralt_round", "pair_accuracy", "pairs_accuracy", "utility_noise"]


def pair_accuracy(s1, s2, u1, u2) -> float:
  """Fraction of pairs with ``u1 ≠ u2`` whose scores order them as their utilities do."""
  s1, s2, u1, u2 = (np.asarray(a, np.float64) for a in (s1, s2, u1, u2))
  keep = u1 != u2
  return float(np.mean((s1[keep] > s2[keep]) == (u1[keep] > u2[keep]))) if keep.any() else 0.5


def utility_noise(u1, u2, v1, v2) -> dict:
  """How much of the true utility is training noise, from two trainings per subset.

  Args:
    u1, u2: ``[P]`` utilities of the two equal-size subsets of each pair (first training).
    v1, v2: ``[P]`` the same subsets trained again with other keys.

  Returns:
    ``retrain_pair_agreement`` (fraction of pairs, among those with ``u1 ≠ u2``, that the
    retrained utilities order as the first ones), ``utility_noise_sd`` (sd of one training's
    utility around the mean of many, ``sd(u − v) / √2`` over all ``2P`` subsets),
    ``pair_difference_sd`` (sd of ``u1 − u2``) and ``noise_share_of_pair_variance``
    (``2 σ² / Var(u1 − u2)``: the part of the pair differences that is training noise).
  """
  u1, u2, v1, v2 = (np.asarray(a, np.float64) for a in (u1, u2, v1, v2))
  noise_sd = float(np.std(np.concatenate([u1 - v1, u2 - v2]), ddof=1) / np.sqrt(2.0))
  diff_sd = float(np.std(u1 - u2, ddof=1))
  return {"retrain_pair_agreement": pair_accuracy(v1, v2, u1, u2),
          "utility_noise_sd": noise_sd, "pair_difference_sd": diff_sd,
          "noise_share_of_pair_variance": 2.0 * noise_sd ** 2 / max(diff_sd ** 2, 1e-12)}


def pairs_accuracy(set_net, params, x0, masks1, masks2, u1, u2) -> float:
  """``pair_accuracy`` of the utility model's scores on pairs of masks over ``x0``."""
  s1, s2 = (np.asarray(set_net.apply_masks(params, jnp.asarray(x0), jnp.asarray(m)).score)
            for m in (masks1, masks2))
  return pair_accuracy(s1, s2, u1, u2)


def bralt_round(config: ConfigDict, data: jal.data.Dataset, n_labeled: int, seed: int) -> dict:
  """One round of BRAL-T at ``n_labeled`` labels against the true-label GraNd oracle.

  Trains the target model as ``config`` says (SuperLoss for BRAL-T) on a random labeled set,
  runs BRAL-T's selection, computes the oracle (true-label GraNd on the unlabeled pool) and
  reports the reward net's loss before/after training, the Spearman correlation between each
  action's predicted reward and its members' mean oracle GraNd, and the oracle percentile of
  the batches chosen by BRAL-T, GradNd-GT, Margin and Random.
  """
  config = config.copy_and_resolve_references()
  config.strategy.name = "bral_t"
  net = build.net(config, data)
  strategy = bral_t_strategy(**{**build.strategy_kwargs(config), "full_info": True})
  k_init, k_fit, k_score, k_pick, k_rand = jax.random.split(jax.random.key(seed), 5)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  mask = jal.initial_mask(k_init, x.shape[0], n_labeled)
  t0 = time.perf_counter()
  variables = jal.fit(k_fit, net, build.train_config(config), x, y, mask).variables
  ctx = jal.Context(net, variables, x, y, mask, data.num_classes, int(config.loop.chunk_size))
  budget = int(config.loop.budget)
  aux = strategy.score(k_score, ctx)
  idx, info = strategy.pick(k_pick, ctx, aux, budget)
  unl = ~np.asarray(mask)
  rows = np.flatnonzero(unl)
  oracle = np.zeros(x.shape[0], np.float32)
  oracle[rows] = np.asarray(jal.scores.grand(net, variables, x[rows], y[rows], 64))
  k = data.num_classes
  gt = np.asarray(balanced_top(jnp.asarray(np.where(unl, oracle, -np.inf)), y, jnp.asarray(unl),
                               k, trustset.per_class_size(budget, k), budget))
  margin = jal.select(jal.get_strategy("margin"), k_rand, ctx, budget)
  rand = jal.select(jal.get_strategy("random"), k_rand, ctx, budget)
  losses = info["losses"]
  return {
      "n_labeled": n_labeled, "seconds": time.perf_counter() - t0,
      "test_accuracy": jal.accuracy(net, variables, data.x_test, data.y_test),
      "reward_loss_first_sampling": float(np.mean(losses[0])),
      "reward_loss_last_sampling": float(np.mean(losses[-1])),
      "action_agreement": diagnostics.action_agreement(info["pred"], info["act_assign"], oracle),
      "overlap_with_gradnd_gt": float(np.isin(idx, gt).mean()),
      "batch_oracle": {name: diagnostics.batch_quality(b, oracle, unl)
                       for name, b in (("bral_t", idx), ("gradnd_gt", gt), ("margin", margin),
                                       ("random", rand))},
  }
