r"""Does RAMBO's utility model rank subsets like the true utility? (held-out pairs, one trial)

  python -m experiments.rambo_diagnose --config=rambo_mnist --data_dir=/work/shared/data \
      --seed=0 --offline_pairs=100 --workdir=/tmp/rambo_diag [--held_out=100]

Trains RAMBO once (as ``rambo_tables``), then draws ``held_out`` fresh random subsets of S₀
(sizes U{2..k}) with a key unused by the trial, trains f on each (the true utility u) and
reports Spearman ρ and Kendall τ between the model's score s(ξ) and u, overall and within
size bins (size alone explains much of u). Writes ``workdir/diagnose.json``.
"""

import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from scipy import stats

from experiments import common, one_round
from jal.rambo import prepare_offline, random_pair_masks, run_rambo, subset_utilities

_HELD = flags.DEFINE_integer("held_out", 100, "Fresh random subsets of S0.", allow_override=True)


def pair_accuracy(s1, s2, u1, u2) -> float:
  """Fraction of pairs with ``u1 ≠ u2`` whose scores order them as their utilities do."""
  s1, s2, u1, u2 = (np.asarray(a, np.float64) for a in (s1, s2, u1, u2))
  keep = u1 != u2
  return float(np.mean((s1[keep] > s2[keep]) == (u1[keep] > u2[keep]))) if keep.any() else 0.5


def main(argv):
  del argv
  common.compilation_cache_from_flags()
  config, cfg, data, net, tc = one_round.setup_from_flags()
  key = jax.random.key(int(config["seed"]))
  t = time.perf_counter()
  off = prepare_offline(key, data, net, tc, cfg)
  res = run_rambo(key, data, net, tc, cfg, offline=off, keep_model=True)
  x0, y0 = data.x_train[off.s0], data.y_train[off.s0]
  k_new = jax.random.fold_in(key, 12345)
  m1, m2 = random_pair_masks(k_new, _HELD.value // 2, jnp.ones(cfg.k, bool))
  masks = np.asarray(jnp.concatenate([m1, m2]))
  u = subset_utilities(jax.random.fold_in(k_new, 1), net, tc, x0, y0, masks, data.x_val,
                       data.y_val)
  out = res["set_net"].apply_masks(res["utility_params"], jnp.asarray(x0), jnp.asarray(masks))
  score, size = np.asarray(out.score), masks.sum(1)
  report = {"val_accuracy": res["val_accuracy"], "n": int(len(u)),
            "spearman": float(stats.spearmanr(score, u)[0]),
            "kendall": float(stats.kendalltau(score, u)[0]),
            "spearman_size_vs_u": float(stats.spearmanr(size, u)[0]),
            "spearman_score_vs_size": float(stats.spearmanr(score, size)[0])}
  # Partial rank correlation given size: residuals of rank(u) and rank(score) on rank(size).
  ru, rs, rz = (stats.rankdata(a) for a in (u, score, size))
  resid = lambda a: a - np.polyval(np.polyfit(rz, a, 1), rz)
  report["partial_spearman_given_size"] = float(np.corrcoef(resid(ru), resid(rs))[0, 1])
  half = len(u) // 2
  report["pairwise_accuracy_same_size_pairs"] = pair_accuracy(score[:half], score[half:],
                                                              u[:half], u[half:])
  # The same on the offline pairs (seen when fitting û₀; R7 keeps them out of D afterwards):
  # does the final model still order the pairs it started from?
  d = off.pairs
  s1, s2 = (np.asarray(res["set_net"].apply_masks(res["utility_params"], jnp.asarray(x0), m).score)
            for m in (d.masks1, d.masks2))
  real = np.asarray(d.weight) > 0
  report["offline_pair_accuracy"] = pair_accuracy(s1[real], s2[real], np.asarray(d.u1)[real],
                                                  np.asarray(d.u2)[real])
  report.update(seconds=time.perf_counter() - t, loadavg=list(os.getloadavg()))
  out_dir = pathlib.Path(one_round._WORKDIR.value)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "diagnose.json").write_text(json.dumps(
      {**report, "u": u.tolist(), "score": score.tolist(), "size": size.tolist()}, indent=1))
  print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
  app.run(main)
