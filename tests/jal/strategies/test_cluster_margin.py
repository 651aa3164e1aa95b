"""Cluster-Margin: round-robin on hand-made clusterings against a naive loop, the HAC (exact and
subsampled) against scipy / brute force, the picks against NumPy margins, and the clustering
kept as state through a killed and resumed run."""

import jax
import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist

import jal
from jal.strategies import cluster_margin as cm
from tests.jal.strategies.random_context import random_context


def _naive_round_robin(groups, u, budget):
  """BASELINES.md §4.2 steps 2–4 as a loop: groups sorted by (size, id); each visit takes the
  group's next member in the order of ``u`` (a uniform draw without replacement)."""
  members = {}
  for pos in np.argsort(u, kind="stable"):
    members.setdefault(int(groups[pos]), []).append(int(pos))
  order = sorted(members, key=lambda g: (len(members[g]), g))
  out = []
  while len(out) < budget and any(members[g] for g in order):
    for g in order:
      if members[g] and len(out) < budget:
        out.append(members[g].pop(0))
  return out


def test_round_robin_on_a_hand_made_clustering():
  # sizes: cluster 1 → 1, 2 → 2, 9 → 2, 5 → 3, 7 → 4 (9 ties with 2: the lower id first)
  groups = np.array([5, 5, 5, 2, 2, 7, 7, 7, 7, 1, 9, 9])
  key = jax.random.key(0)
  u = np.asarray(jax.random.uniform(key, (groups.size,)))
  got = cm.round_robin(key, groups, groups.size)
  assert got.tolist() == _naive_round_robin(groups, u, groups.size)
  assert sorted(got.tolist()) == list(range(groups.size))  # never repeats a row
  assert groups[got[:5]].tolist() == [1, 2, 9, 5, 7]  # smallest group first, one per group
  assert groups[got[5:9]].tolist() == [2, 9, 5, 7]
  assert groups[got[9:]].tolist() == [5, 7, 7]
  for b in (1, 4, 7):
    assert cm.round_robin(key, groups, b).tolist() == got[:b].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_round_robin_matches_the_naive_loop(seed):
  rng = np.random.default_rng(seed)
  groups = rng.integers(0, 6, 40)
  key = jax.random.key(seed)
  u = np.asarray(jax.random.uniform(key, (40,)))
  for b in (3, 17, 40):
    assert cm.round_robin(key, groups, b).tolist() == _naive_round_robin(groups, u, b)
  other = cm.round_robin(jax.random.key(seed + 100), groups, 40)
  assert groups[other].tolist() == groups[cm.round_robin(key, groups, 40)].tolist()


def _same_partition(a, b):
  pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
  return len(pairs) == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


def test_exact_hac_is_scipy_average_linkage():
  x = np.random.default_rng(0).standard_normal((90, 5)).astype(np.float32)
  got = cm.hac_clusters(jax.random.key(0), x, cluster_size=10, hac_points=200)
  want = hierarchy.fcluster(hierarchy.linkage(pdist(x.astype(np.float64)), "average"), 9,
                            "maxclust")
  assert _same_partition(got, want)
  assert got.min() == 0 and got.max() + 1 == len(set(want.tolist()))


def test_subsampled_hac_assigns_the_rest_to_the_nearest_centroid():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((300, 4)).astype(np.float32)
  key = jax.random.key(3)
  got = cm.hac_clusters(key, x, cluster_size=5, hac_points=60, chunk_size=32)
  sub = np.sort(np.asarray(jax.random.choice(key, 300, (60,), replace=False)))
  want_sub = hierarchy.fcluster(hierarchy.linkage(pdist(x[sub].astype(np.float64)), "average"),
                                12, "maxclust")
  assert _same_partition(got[sub], want_sub)
  c = got.max() + 1
  cent = np.stack([x[sub][got[sub] == j].mean(0) for j in range(c)])
  rest = np.setdiff1d(np.arange(300), sub)
  d = ((x[rest, None, :].astype(np.float64) - cent[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(got[rest], d.argmin(1))


def test_pick_takes_smallest_margin_candidates_from_distinct_clusters():
  rng = np.random.default_rng(2)
  ctx = random_context(rng, 150, 10, 8, 1, 30)
  net, v, x, labeled = ctx.net, ctx.variables, ctx.x, np.asarray(ctx.labeled)
  labels = rng.integers(0, 8, 150).astype(np.int32)
  ctx = ctx._replace(state={"labels": labels, "seconds": 0.0, "fresh": 0})
  s = jal.get_strategy("cluster_margin", km_factor=3)
  idx, info = jal.strategies.pick(s, jax.random.key(4), ctx, s.score(None, ctx), 6)
  p = np.sort(np.asarray(jax.nn.softmax(jal.predict(net, v, x)[0], -1), np.float64), -1)
  margin = np.where(labeled, np.inf, p[:, -1] - p[:, -2])
  cand = np.argsort(margin, kind="stable")[:18]
  assert set(idx.tolist()) <= set(cand.tolist())
  n_groups = len(set(labels[cand].tolist()))
  assert len(set(labels[idx].tolist())) == min(6, n_groups)
  assert info["candidates"] == 18 and info["candidate_groups"] == n_groups


LOOP = jal.LoopConfig(init_size=20, budget=10, rounds=3, chunk_size=256)
TRAIN = jal.TrainConfig(epochs=2, batch_size=16)


class _Killed(Exception):
  pass


def test_clustering_is_state_computed_once_and_restored_on_resume(tmp_path, monkeypatch):
  data = jal.data.load("digits", seed=0)
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(16,))
  calls = []
  real = cm._pool_clusters

  def counted(*args):
    calls.append(1)
    return real(*args)

  monkeypatch.setattr(cm, "_pool_clusters", counted)
  strategy = jal.get_strategy("cluster_margin")

  def run(work, **kw):
    return jal.run_loop(jax.random.key(5), data, net, TRAIN, strategy, LOOP, verbose=False,
                        workdir=str(tmp_path / work), **kw)

  ref = run("ref")
  assert len(calls) == 1  # clustered at the first query only
  infos = [r["pick_info"] for r in ref.rounds[:-1]]
  assert "clustering_seconds" in infos[0] and "clustering_seconds" not in infos[1]
  assert len({i["clusters"] for i in infos}) == 1

  def kill_after_round_1(r, rec):
    if r == 1:
      raise _Killed

  calls.clear()
  with pytest.raises(_Killed):
    run("resumed", on_round=kill_after_round_1)
  assert len(calls) == 1
  got = run("resumed")
  assert len(calls) == 1  # the resumed rounds use the checkpointed clustering
  assert [r["queried"] for r in got.rounds] == [r["queried"] for r in ref.rounds]


def test_one_round_protocol_is_the_loops_first_round():
  """``jal.rambo.run_one_round`` gives the stateful strategy its first state as the loop does."""
  data = jal.data.load("digits", seed=0)
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(8,))
  tc = jal.TrainConfig(epochs=2, batch_size=16)
  cfg = jal.rambo.RamboConfig(k=30, budget=10, k1=20, b=5)
  # A subsampled clustering (hac_points < pool), so the state's key matters.
  strategy = jal.get_strategy("cluster_margin", hac_points=200)
  res = jal.rambo.run_one_round(jax.random.key(0), data, net, tc, cfg, strategy)
  hist = jal.run_loop(jax.random.key(0), data, net, tc, strategy,
                      jal.LoopConfig(init_size=30, budget=10, rounds=1), verbose=False)
  assert list(res["selected"]) == hist.rounds[0]["queried"]
  assert res["test_accuracy"] == hist.rounds[1]["test_accuracy"]
  by_name = jal.rambo.run_one_round(jax.random.key(0), data, net, tc, cfg, "cluster_margin")
  assert len(by_name["selected"]) == 10
