r"""Does RAMBO's utility model rank subsets like the true utility? (held-out pairs, one trial)

  python -m experiments.rambo_diagnose --workdir=/tmp/rambo_diag
  python -m experiments.rambo_diagnose --config=rambo_mnist --data_dir=/work/shared/data \
      --config.seed=0 --config.rambo.offline_pairs=100 --workdir=/tmp/rambo_diag \
      [--held_out=100] [--norambo]

Trains RAMBO once (as ``rambo_tables``), then draws ``held_out`` fresh random subsets of S₀
(``held_out / 2`` pairs of equal size, sizes U{2..k}) with a key unused by the trial, trains f
on each (the true utility u) and reports Spearman ρ and Kendall τ between the model's score
s(ξ) and u, the same corrected for size (size alone explains much of u), and the fraction of
equal-size pairs the score orders as u does.

It also measures how much of u is training noise: f is trained a second time on every
held-out subset with another key (u′). ``retrain_pair_agreement`` is the fraction of pairs
that u′ orders as u does: a RankNet target that a second training reverses this often cannot
be learnt from one training per subset. ``--norambo`` measures only this (no RAMBO trial).
``--fit_steps=200,1000`` also fits û₀ from scratch on the trial's offline pairs for each step
count and reports how many of those pairs, and of the held-out pairs, it orders correctly.
Writes ``workdir/diagnose.json``. ``--config`` is a config of the ``"one_round"`` family
(default ``rambo_digits``).
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

from experiments import build, runtime
from experiments.diagnostics import pair_accuracy, pairs_accuracy, utility_noise
from jal.rambo import (
  make_set_net,
  prepare_offline,
  random_pair_masks,
  run_rambo,
  subset_utilities,
  train_plain,
  trial_s0,
)

_CONFIG = runtime.define_config("rambo_diagnose", default="rambo_digits")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_rambo_diagnose", "Output directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")
_HELD = flags.DEFINE_integer("held_out", 100, "Fresh random subsets of S0 (pairs: half).",
                             lower_bound=4)
_FIT_STEPS = flags.DEFINE_list(
    "fit_steps", [], "Also fit û₀ from scratch on the offline pairs for each of these step "
    "counts and report its pair accuracy on those pairs (fit) and on the held-out pairs.")
_RAMBO = flags.DEFINE_bool("rambo", True, "Train RAMBO and score its utility model (else only "
                           "the retraining noise of the true utilities).")


def _main():
  try:
    fit_steps = sorted({int(v) for v in _FIT_STEPS.value})
  except ValueError as e:
    raise app.UsageError(f"--fit_steps takes positive integers, got {_FIT_STEPS.value}") from e
  if any(v < 1 for v in fit_steps):
    raise app.UsageError(f"--fit_steps takes positive integers, got {_FIT_STEPS.value}")
  config = _CONFIG.value
  cfg, tc = build.rambo_config(config), build.train_config(config)
  data = build.dataset(config, _DATA_DIR.value)
  net = build.net(config, data)
  key = build.run_key(config)
  t = time.perf_counter()
  report = {}
  off = (prepare_offline(key, data, net, tc, cfg) if _RAMBO.value or _FIT_STEPS.value
         else None)
  if _RAMBO.value:
    res = run_rambo(key, data, net, tc, cfg, offline=off, keep_model=True)
    s0 = off.s0
    report["val_accuracy"] = res["val_accuracy"]
  else:
    s0 = trial_s0(key, data, cfg.k)
  x0, y0 = data.x_train[s0], data.y_train[s0]
  k_new = jax.random.fold_in(key, 12345)
  m1, m2 = random_pair_masks(k_new, _HELD.value // 2, jnp.ones(cfg.k, bool))
  masks = np.asarray(jnp.concatenate([m1, m2]))
  half = masks.shape[0] // 2
  size = masks.sum(1)
  u = subset_utilities(jax.random.fold_in(k_new, 1), net, tc, x0, y0, masks, data.x_val,
                       data.y_val)
  u_again = subset_utilities(jax.random.fold_in(k_new, 2), net, tc, x0, y0, masks, data.x_val,
                             data.y_val)
  report.update(n=int(len(u)), spearman_size_vs_u=float(stats.spearmanr(size, u)[0]),
                **utility_noise(u[:half], u[half:], u_again[:half], u_again[half:]))
  # Noise by pair size (small sets are noisier and differ more).
  edges = np.linspace(2, cfg.k + 1, 4).round().astype(int)
  report["retrain_pair_agreement_by_size"] = {
      f"{lo}-{hi - 1}": utility_noise(u[:half][sel], u[half:][sel], u_again[:half][sel],
                                      u_again[half:][sel])["retrain_pair_agreement"]
      for lo, hi in zip(edges[:-1], edges[1:])
      if np.sum(sel := (size[:half] >= lo) & (size[:half] < hi)) >= 2}
  arrays = {"u": u.tolist(), "u_retrained": u_again.tolist(), "size": size.tolist()}
  if off is not None:
    real = np.asarray(off.pairs.weight) > 0
    offline_pairs = tuple(np.asarray(a)[real] for a in (off.pairs.masks1, off.pairs.masks2,
                                                         off.pairs.u1, off.pairs.u2))
  if _RAMBO.value:
    out = res["set_net"].apply_masks(res["utility_params"], jnp.asarray(x0), jnp.asarray(masks))
    score = np.asarray(out.score)
    arrays["score"] = score.tolist()
    report.update(spearman=float(stats.spearmanr(score, u)[0]),
                  kendall=float(stats.kendalltau(score, u)[0]),
                  spearman_score_vs_size=float(stats.spearmanr(score, size)[0]))
    # Partial rank correlation given size: residuals of rank(u) and rank(score) on rank(size).
    ru, rs, rz = (stats.rankdata(a) for a in (u, score, size))
    resid = lambda a: a - np.polyval(np.polyfit(rz, a, 1), rz)
    report["partial_spearman_given_size"] = float(np.corrcoef(resid(ru), resid(rs))[0, 1])
    report["pairwise_accuracy_same_size_pairs"] = pair_accuracy(score[:half], score[half:],
                                                                u[:half], u[half:])
    # The same on the offline pairs (seen when fitting û₀; R7 keeps them out of D afterwards):
    # does the final model still order the pairs it started from?
    report["offline_pair_accuracy"] = pairs_accuracy(res["set_net"], res["utility_params"], x0,
                                                      *offline_pairs)
  if _FIT_STEPS.value:
    # Can û₀ fit its own offline pairs, and does what it fits carry over to fresh pairs?
    set_net = make_set_net(x0.shape[1:], extractor=cfg.extractor)
    curve = {}
    for steps in fit_steps:
      params = train_plain(set_net, cfg.utility, set_net.init(jax.random.split(key, 8)[2]), x0,
                           off.pairs, steps)
      curve[str(steps)] = {
          "offline_pair_accuracy": pairs_accuracy(set_net, params, x0, *offline_pairs),
          "held_out_pair_accuracy": pairs_accuracy(set_net, params, x0, masks[:half],
                                                    masks[half:], u[:half], u[half:])}
      print(f"û₀ after {steps} steps: {curve[str(steps)]}", flush=True)
    report["fit_curve"] = curve
  report.update(seconds=time.perf_counter() - t, loadavg=list(os.getloadavg()))
  out_dir = pathlib.Path(_WORKDIR.value)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "diagnose.json").write_text(json.dumps(
      {**report, **arrays}, indent=1))
  print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
  runtime.run(_main, "rambo_diagnose", _CONFIG)
