"""Runs the 8-device sharding checks in a fresh process and prints one JSON line.

The pytest process keeps its 1-device CPU backend, so ``tests/test_sharding.py`` starts this
script with ``jax_num_cpu_devices=8`` and asserts on its output. Shapes are tiny.

  python tests/sharding_worker.py [num_devices] [sections]

``sections`` is a comma list of ``fit``, ``score``, ``round`` (Random, Margin, BADGE),
``round_clusters`` (CoreSet, k-means; slow), ``bralt`` (the pool pass) and ``bralt_picks`` (the
whole BRAL-T selection; slow); default: ``fit,score,round,bralt``.
"""

import json
import sys

import jax

jax.config.update("jax_num_cpu_devices", int(sys.argv[1]) if len(sys.argv) > 1 else 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import jal  # noqa: E402
from jal import parallel  # noqa: E402
from tests.mesh_checks import largest_all_gather as _largest_all_gather  # noqa: E402
from tests.mesh_checks import max_rel as _max_rel  # noqa: E402
from tests.mesh_checks import spec as _spec  # noqa: E402

N = 256       # pool rows, a multiple of 8
N_LAB = 40
BUDGET = 12


def bralt_section(out, mesh, net, variables, x, y, labeled, picks: bool):
  """BRAL-T's strategies on one device and on ``mesh`` from the same model: the pool pass
  really ran split (its embeddings come back sharded along ``data``) and equals the
  single-device one; with ``picks`` (slow: the RL agent trains twice) the picks are equal."""
  env = dict(n_state_clusters=3, n_label_clusters=3, actions=2, max_points=32,
             rel_epsilon=1e-2, num_samplings=2, steps_per_sampling=3)
  same, specs, score_rel = {}, {}, {}
  for name, kw in (("bral_t", {"env": env, "pad_to": 32, "workers": 1}),
                   ("pseudo_score", {})):
    strat = jal.get_strategy(name, **kw)
    chosen, scored = [], []
    for m in (None, mesh):
      ctx = jal.Context(net, variables, x, y, jnp.asarray(labeled), 10, 32, m)
      scored.append(strat.score(jax.random.key(0), ctx))
      if picks:
        chosen.append(jal.select(strat, jax.random.key(5), ctx, BUDGET).tolist())
    if "emb" in scored[1]:
      specs[name] = _spec(scored[1]["emb"])
    score_rel[name] = max(_max_rel(b, a) for a, b in zip(jax.tree.leaves(scored[0]),
                                                         jax.tree.leaves(scored[1]))
                          if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.inexact))
    if picks:
      same[name] = chosen[0] == chosen[1]
  out["bralt_same"] = same
  out["bralt_emb_spec"] = specs
  out["bralt_score_max_rel"] = score_rel


def main():
  sections = set((sys.argv[2] if len(sys.argv) > 2 else "fit,score,round,bralt").split(","))
  out = {"devices": jax.device_count()}
  mesh = parallel.make_mesh()
  digits = load_digits()
  x = digits.images[:N].astype(np.float32)
  x = jnp.asarray(((x - x.mean()) / x.std())[..., None])
  y = jnp.asarray(digits.target[:N].astype(np.int32))
  rng = np.random.default_rng(0)
  labeled = np.zeros(N, bool)
  labeled[rng.choice(N, N_LAB, replace=False)] = True
  net = jal.make_net("mlp", x.shape[1:], 10, hidden=(32,))
  cfg = jal.TrainConfig(epochs=3, batch_size=16)
  key = jax.random.key(0)

  r1 = jal.fit(key, net, cfg, x, y, jnp.asarray(labeled))
  if "fit" in sections:
    fit_section(out, mesh, net, cfg, key, x, y, labeled, r1)
  if "score" in sections:
    score_section(out, mesh, net, r1.variables, x, y)
  if "round" in sections:
    round_section(out, mesh, net, cfg, key, x, y, labeled, ("random", "margin", "badge"))
  if "round_clusters" in sections:
    round_section(out, mesh, net, cfg, key, x, y, labeled, ("coreset", "kmeans"))
  if sections & {"bralt", "bralt_picks"}:
    bralt_section(out, mesh, net, r1.variables, x, y, labeled, "bralt_picks" in sections)
  print("JSON" + json.dumps(out))


def fit_section(out, mesh, net, cfg, key, x, y, labeled, r1):
  """fit and fit_many: sharded vs single device; what a sharded step gathers."""
  r8 = jal.fit(key, net, cfg, x, y, jnp.asarray(labeled), mesh=mesh)
  out["fit_max_rel"] = max(_max_rel(a, b) for a, b in zip(jax.tree.leaves(r8.variables.params),
                                                         jax.tree.leaves(r1.variables.params)))
  out["fit_params_replicated"] = all(a.sharding.is_fully_replicated and
                                     len(a.sharding.device_set) == 8
                                     for a in jax.tree.leaves(r8.variables.params))
  with parallel.use_mesh(mesh):  # one training step: what crosses devices?
    st = jal.train.epoch.init_one(net, cfg, key)
    st, xs, ys, ms = jal.train.trainer.place(mesh, st, x, y, jnp.asarray(labeled))
    st, plan = jal.train.epoch.begin_one(st, key, ms, cfg.batch_size)
  out["fit_step_max_all_gather"] = _largest_all_gather(
      jal.train.epoch.step_one, mesh, net, cfg, st, plan, jnp.int32(0), xs, ys)
  masks = jnp.asarray(np.stack([labeled, np.roll(labeled, 3)]))
  m1 = jal.fit_many(jax.random.split(key, 2), net, cfg, x, y, masks)
  m8 = jal.fit_many(jax.random.split(key, 2), net, cfg, x, y, masks, mesh=mesh)
  out["fit_many_max_rel"] = max(_max_rel(a, b) for a, b in
                                zip(jax.tree.leaves(m8.variables.params),
                                    jax.tree.leaves(m1.variables.params)))


def score_section(out, mesh, net, v, x, y):
  """Chunked scoring: sharded vs single device, on the same variables."""
  l1, e1 = jal.predict(net, v, x, 16)
  l8, e8 = jal.predict(net, v, parallel.shard_rows(x, mesh), 16, mesh=mesh)
  out["predict_max_rel"] = max(_max_rel(l8, l1), _max_rel(e8, e1))
  out["predict_specs"] = [_spec(l8), _spec(e8)]
  s1 = jal.scores.el2n(net, v, x, y, 16)
  s8 = jal.scores.el2n(net, v, x, y, 16, mesh=mesh)
  out["el2n_max_rel"] = _max_rel(s8, s1)
  out["el2n_spec"] = _spec(s8)
  lo, _ = jal.predict(net, v, x[:N - 3], 16, mesh=mesh)  # not a multiple of 8: padded inside
  out["predict_uneven_max_rel"] = _max_rel(lo, l1[:N - 3])
  out["predict_max_all_gather"] = _largest_all_gather(
      jal.train.inference.predict_jit, mesh, net, parallel.replicate(v, mesh),
      parallel.shard_rows(x, mesh), 16)


def round_section(out, mesh, net, cfg, key, x, y, labeled, names):
  """One AL round (fit + score + select) of each strategy in ``names``, same seed, single
  device vs mesh. (Entropy / least confidence share Margin's path.)"""
  same = out.setdefault("round_same", {})
  for name in names:
    strat = jal.get_strategy(name)
    picks = []
    for m in (None, mesh):
      res = jal.fit(key, net, cfg, x, y, jnp.asarray(labeled), mesh=m)
      ctx = jal.Context(net, res.variables, x, y, jnp.asarray(labeled), 10, 32, m)
      seen = []  # what the pool pass gave select (a select that dropped the mesh: 1 device)
      spy = strat._replace(
          score=lambda k, c, f=strat.score, s=seen: s.append(f(k, c)) or s[-1])
      picks.append(jal.select(spy, jax.random.key(1), ctx, BUDGET).tolist())
      if m is not None:  # row-split over the 8 devices (not replicated, not on one)
        out[f"score_row_sharded_{name}"] = [
            len(a.sharding.device_set) == 8 and not a.sharding.is_fully_replicated
            for a in jax.tree.leaves(seen[-1])
            if isinstance(a, jax.Array) and a.ndim and a.shape[0] >= x.shape[0]]
    same[name] = picks[0] == picks[1]
    out[f"picks_{name}"] = picks


if __name__ == "__main__":
  main()
