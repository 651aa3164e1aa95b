"""Tests for jal.bralt: TrustSet, scores, padded OT, reward net, quota selection.

The RL sampling and the end-to-end run live in ``test_bralt_rl.py``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from ott.geometry import pointcloud
from ott.solvers import linear

from jal.bralt import ot, reward_net, select, strategy, trustset


def _np_trustset(scores, y, labeled, num_classes, per_class):
  out = np.zeros(scores.shape, bool)
  for k in range(num_classes):
    rows = np.flatnonzero(labeled & (y == k))
    rows = rows[np.argsort(-scores[rows], kind="stable")][:per_class]
    out[rows] = True
  return out


def test_trustset_class_balanced_top_scores():
  rng = np.random.default_rng(0)
  n, k, per_class = 90, 5, 4
  y = rng.integers(0, k, n)
  y[y == 4] = 3                        # class 4 absent
  y[np.flatnonzero(y == 2)[2:]] = 1    # class 2 has only 2 members
  scores = rng.normal(size=n).astype(np.float32)
  labeled = rng.random(n) < 0.7
  got = np.asarray(trustset.trustset_mask(jnp.asarray(scores), jnp.asarray(y),
                                          jnp.asarray(labeled), k, per_class))
  want = _np_trustset(scores, y, labeled, k, per_class)
  np.testing.assert_array_equal(got, want)
  counts = np.bincount(y[got], minlength=k)
  assert counts[2] == min(2, (labeled & (y == 2)).sum()) and counts[4] == 0
  assert counts[0] == counts[1] == counts[3] == per_class
  assert not got[~labeled].any()


def test_superloss_el2n_matches_numpy():
  rng = np.random.default_rng(1)
  n, k, tau, lam = 64, 7, math.log(7), 1.0
  logits = (3 * rng.normal(size=(n, k))).astype(np.float32)
  y = rng.integers(0, k, n)
  got = np.asarray(trustset.scores_from_logits(jnp.asarray(logits), jnp.asarray(y),
                                               "superloss_el2n", None, lam))
  z = logits.astype(np.float64)
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  ce = scipy.special.logsumexp(z, axis=1) - z[np.arange(n), y]
  beta = (ce - tau) / lam
  arg = 0.5 * np.maximum(-2 / np.e, beta)
  w0 = np.where(arg <= -1 / np.e + 1e-12, -1.0,  # the branch point (σ* = e)
                np.real(scipy.special.lambertw(np.maximum(arg, -1 / np.e + 1e-12))))
  sigma = np.exp(-w0)
  el2n = np.linalg.norm(p - np.eye(k)[y], axis=1)
  np.testing.assert_allclose(got, sigma * el2n, rtol=1e-5, atol=1e-7)
  plain = trustset.scores_from_logits(jnp.asarray(logits), jnp.asarray(y), "el2n")
  np.testing.assert_allclose(np.asarray(plain), el2n, rtol=1e-5, atol=1e-7)


def _ott_unpadded(x, y, eps):
  geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=eps)
  with jax.numpy_rank_promotion("allow"):  # ott broadcasts implicitly
    return float(linear.solve(geom, max_iterations=5000, threshold=1e-6).primal_cost)


# ε relative to the mean cost for the padding test: large enough for Sinkhorn to converge to
# a 1e-6 marginal error in float32 (with A3's 1e-3 it stops at ~1e-4 relative accuracy).
REL_EPS = 0.05


@pytest.mark.slow  # ~28 s per variant on 2 cores (CI time); the bral_t golden runs the default
@pytest.mark.parametrize("batching", ["vmap", "map"])
def test_padded_vmapped_wasserstein_equals_unpadded(batching):
  rng = np.random.default_rng(2)
  sizes = [(3, 5), (7, 11), (16, 9)]
  pad, d = 16, 4
  xs, ys, xm, ym, want = [], [], [], [], []
  for nx, ny in sizes:
    x = rng.normal(size=(nx, d)).astype(np.float32)
    y = (rng.normal(size=(ny, d)) + 1.0).astype(np.float32)
    eps = REL_EPS * float(np.mean(((x[:, None] - y[None]) ** 2).sum(-1)))
    want.append(_ott_unpadded(x, y, eps))
    # Padding rows hold garbage: they must not matter.
    xs.append(np.concatenate([x, 50 * rng.normal(size=(pad - nx, d))]).astype(np.float32))
    ys.append(np.concatenate([y, 50 * rng.normal(size=(pad - ny, d))]).astype(np.float32))
    xm.append(np.arange(pad) < nx)
    ym.append(np.arange(pad) < ny)
  # Both solves run to a tight threshold so that they stop at the same fixed point.
  pairs = jax.jit(ot.wasserstein_pairs, static_argnames=("max_iterations", "batching"))
  xs.append(xs[0])  # an empty cloud gives +inf, inside the same batch
  ys.append(ys[0])
  xm.append(np.zeros(pad, bool))
  ym.append(ym[0])
  got = pairs(*map(jnp.asarray, (xs, ys, xm, ym)), rel_epsilon=REL_EPS, max_iterations=5000,
              threshold=1e-6, batching=batching)
  np.testing.assert_allclose(np.asarray(got[:3]), want, rtol=1e-5)
  assert np.isposinf(float(got[3]))


def test_wasserstein_close_to_exact_assignment():
  """Equal-size uniform clouds: exact W₂² = optimal assignment; Sinkhorn with
  ε = 1e-3·mean(C) is within 0.5% of it."""
  rng = np.random.default_rng(3)
  x = rng.normal(size=(12, 3))
  y = rng.normal(size=(12, 3)) + 0.5
  cost = ((x[:, None] - y[None]) ** 2).sum(-1)
  r, c = scipy.optimize.linear_sum_assignment(cost)
  exact = cost[r, c].mean()
  got = float(ot.wasserstein(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))
  np.testing.assert_allclose(got, exact, rtol=5e-3)


def test_gather_clusters_and_moments():
  rng = np.random.default_rng(4)
  n, k, d = 40, 4, 3
  assign = rng.integers(-1, k, n)
  x = rng.normal(size=(n, d)).astype(np.float32)
  idx, mask, counts = ot.gather_clusters(jax.random.key(0), jnp.asarray(assign), k, 6)
  idx, mask = np.asarray(idx), np.asarray(mask)
  for c in range(k):
    members = np.flatnonzero(assign == c)
    assert counts[c] == members.size
    chosen = idx[c][mask[c]]
    assert chosen.size == min(6, members.size) and set(chosen) <= set(members)
    assert np.unique(chosen).size == chosen.size
  mean, var, _ = ot.segment_moments(jnp.asarray(x), jnp.asarray(assign), k)
  for c in range(k):
    np.testing.assert_allclose(mean[c], x[assign == c].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var[c], x[assign == c].var(0), rtol=1e-4, atol=1e-6)


def test_reward_net_learns_known_reward():
  key = jax.random.key(0)
  n, d = 300, 3
  ks = jax.random.split(key, 4)
  s = jax.random.normal(ks[0], (n, 4 * d))
  a = jnp.concatenate([jax.random.normal(ks[1], (n, d)),
                       jax.random.uniform(ks[2], (n, d))], axis=1)
  c = jnp.array([0.5, -0.5, 0.0])
  r = -jnp.sum((a[:, :d] - c[None, :]) ** 2, axis=1)
  buf = reward_net.push(reward_net.init_buffer(n, 4 * d, 2 * d), s, a, r, jnp.ones(n, bool))
  model = reward_net.init_reward_model(ks[3], 4 * d, 2 * d)

  model, losses = reward_net.train_steps(jax.random.key(1), model, buf, steps=20)
  first = float(losses[0])  # MSE (normalised targets) of the untrained net
  for i in range(9):  # 200 SGD steps in all (ratio ≈ 0.11 at seed 0)
    model, losses = reward_net.train_steps(jax.random.key(2 + i), model, buf, steps=20)
  final = float(jnp.mean((reward_net.predict_reward(model, s, a) - r) ** 2)) / float(
      model.norm.scale) ** 2
  assert final < 0.2 * first, (first, final)


def test_buffer_is_circular_and_skips_invalid():
  buf = reward_net.init_buffer(4, 1, 1)
  r = jnp.arange(1.0, 4.0)
  buf = reward_net.push(buf, r[:, None], r[:, None], r, jnp.array([True, False, True]))
  assert int(buf.count) == 2 and buf.r.tolist() == [1.0, 3.0, 0.0, 0.0]
  buf = reward_net.push(buf, r[:, None], r[:, None], r, jnp.ones(3, bool))
  assert int(buf.count) == 5 and buf.r.tolist() == [3.0, 3.0, 1.0, 2.0]


N_POOL, C_STATES, N_ACT = 60, 3, 2


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.sampled_from([7, 45]),
       unlabeled_frac=st.floats(0.3, 1.0), global_ranking=st.booleans())
def test_fill_batch_exact_unique_unlabeled(seed, budget, unlabeled_frac, global_ranking):
  rng = np.random.default_rng(seed)
  p = C_STATES * N_ACT
  weights = rng.dirichlet(np.full(p, 0.7))
  act = rng.choice(p, size=N_POOL, p=weights)
  act[rng.random(N_POOL) > unlabeled_frac] = -1  # labeled rows
  pred = rng.normal(size=p).astype(np.float32)
  pred[rng.random(p) < 0.15] = -np.inf
  idx, sel = select.fill_batch(jax.random.key(seed), jnp.asarray(act), jnp.asarray(pred),
                               C_STATES, budget, global_ranking)
  idx, sel = np.asarray(idx), np.asarray(sel)
  avail = int((act >= 0).sum())
  want = min(budget, avail)
  chosen = idx[idx >= 0]
  assert chosen.size == want and np.unique(chosen).size == want
  assert (act[chosen] >= 0).all() and sel.sum() == want
  state = act // N_ACT
  sizes = np.array([(state == c).sum() for c in range(C_STATES)])
  if not global_ranking and (sizes >= -(-budget // C_STATES)).all():
    counts = np.array([(state[chosen] == c).sum() for c in range(C_STATES)])
    assert sorted(counts) == sorted([budget // C_STATES + (i < budget % C_STATES)
                                     for i in range(C_STATES)])
    for c in range(C_STATES):  # better actions of a state are exhausted first
      acts = np.arange(c * N_ACT, (c + 1) * N_ACT)
      order = acts[np.argsort(-pred[acts], kind="stable")]
      taken = [(act[chosen] == a).sum() for a in order]
      full = [(act == a).sum() for a in order]
      for j in range(1, N_ACT):
        if taken[j] > 0:
          assert all(taken[i] == full[i] for i in range(j))
  if global_ranking:  # one ranking: a worse action is used only when better ones are full
    order = np.argsort(-np.where(np.isfinite(pred), pred, -np.inf), kind="stable")
    taken = [(act[chosen] == a).sum() for a in order]
    full = [(act == a).sum() for a in order]
    for j in range(1, p):
      if taken[j] > 0:
        assert all(taken[i] == full[i] for i in range(j))


@pytest.mark.parametrize("global_ranking", [False, True])
def test_fill_by_score_takes_the_top_scores_of_the_overflowing_action(global_ranking):
  # 2 states × 2 actions; state 0's best action (id 1, 6 rows) overflows a quota of 2:
  # "score" fill takes its two highest point scores, "uniform" fill a seeded random pair.
  act = np.array([1, 1, 1, 1, 1, 1, 0, 0, 2, 3, 3, 3, -1, -1])
  score = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.0, 5.0, 5.0, 1.0, 0.5, 0.7, 0.6, 9.0, 9.0],
                   np.float32)
  pred = jnp.array([0.0, 1.0, -1.0, 0.5])
  budget = 4
  idx, _ = select.fill_batch(jax.random.key(0), jnp.asarray(act), pred, 2, budget,
                             global_ranking, jnp.asarray(score))
  chosen = set(np.asarray(idx).tolist())
  if global_ranking:  # action 1 first (4 of its 6 rows by score)
    assert chosen == {1, 3, 2, 4}
  else:  # quota 2 per state: action 1's two best, then state 1's best action (3) by score
    assert chosen == {1, 3, 10, 11}
  picks = [set(np.asarray(select.fill_batch(jax.random.key(s), jnp.asarray(act), pred, 2,
                                            budget, global_ranking)[0]).tolist())
           for s in range(6)]
  assert len({frozenset(p) for p in picks}) > 1  # uniform fill varies with the key


def test_fill_validation():
  with pytest.raises(ValueError, match="fill"):
    strategy.bral_t_strategy(fill="best")


def test_balanced_top_and_diffset():
  scores = jnp.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 9.0, 8.0])
  cls = jnp.array([0, 0, 0, 1, 1, 1, 1, 1])
  mask = jnp.array([True] * 6 + [False, True])
  idx = np.asarray(strategy.balanced_top(scores, cls, mask, 2, 2, 5))
  assert set(idx[:4].tolist()) == {0, 1, 7, 3} and idx[4] == 2
  d = np.asarray(strategy.diffset_mask(scores, mask, 2, 1))
  assert np.flatnonzero(d).tolist() == [1, 2]  # ranks 2-3 of the masked rows: 4.0, 3.0


def test_trust_group_validation():
  with pytest.raises(ValueError, match="trust_group"):
    strategy.bral_t_strategy(trust_group="nope")


def test_over_relaxed_sinkhorn_matches_plain():
  """Momentum (ω = 1.5, and a divergent ω = 1.95 that falls back to plain Sinkhorn) reaches
  the plain solver's W₂² on overlapping and distant clouds."""
  rng = np.random.default_rng(5)
  centres = rng.normal(size=(3, 6)) * 3
  xs = np.stack([centres[rng.integers(0, 3, 24)] + rng.normal(size=(24, 6)) for _ in range(4)])
  ys = np.stack([centres[rng.integers(0, 3, 32)] + rng.normal(size=(32, 6)) for _ in range(4)])
  ys[1] += 8.0  # one distant pair
  xs, ys = jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)
  xm, ym = jnp.ones(xs.shape[:2], bool), jnp.ones(ys.shape[:2], bool)
  pairs = jax.jit(ot.wasserstein_pairs, static_argnames=("max_iterations", "batching",
                                                           "momentum"))
  kw = dict(rel_epsilon=1e-2, max_iterations=3000, threshold=1e-5, batching="map")
  plain = np.asarray(pairs(xs, ys, xm, ym, **kw))
  for omega in (1.5, 1.95):
    got = np.asarray(pairs(xs, ys, xm, ym, momentum=omega, **kw))
    np.testing.assert_allclose(got, plain, rtol=1e-3)


def test_diagnostics_against_scipy_and_by_hand():
  from jal.bralt import diagnostics
  # Spearman by hand: ranks [0,1,2,3] vs [0,2,1,3] → 1 − 6·Σd²/(n(n²−1)) = 1 − 12/60.
  assert diagnostics.spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 30, 20, 40])) == \
      pytest.approx(0.8)
  assert np.isnan(diagnostics.spearman(np.ones(4), np.arange(4.0)))
  # 3 actions; action 2 has no members and action 3 is invalid (−inf).
  pred = np.array([0.5, 2.0, 1.0, -np.inf])
  act = np.array([0, 0, 1, 1, 3, -1])
  oracle = np.array([1.0, 3.0, 10.0, 20.0, 99.0, 50.0])
  out = diagnostics.action_agreement(pred, act, oracle)
  assert out["n_actions"] == 2 and out["spearman"] == pytest.approx(1.0)
  assert out["top_action_oracle_percentile"] == pytest.approx(100.0)
  q = diagnostics.batch_quality(np.array([2, 3]), oracle, np.array([1, 1, 1, 1, 0, 0], bool))
  assert q["mean"] == pytest.approx(15.0)
  assert q["mean_percentile"] == pytest.approx((200 / 3 + 100) / 2)


@pytest.mark.parametrize("batching", ["map", "vmap"])
def test_wasserstein_with_fallback_equals_explicit_pairs(batching):
  """Each cloud against its own target, or the shared fallback when the target is empty."""
  rng = np.random.default_rng(7)
  p, n, m, m2, d = 5, 6, 4, 9, 3
  xs = jnp.asarray(rng.normal(size=(p, n, d)), jnp.float32)
  xm = jnp.asarray(rng.random((p, n)) < 0.8).at[:, 0].set(True)
  targets = jnp.asarray(rng.normal(size=(2, m, d)) + 1.0, jnp.float32)
  tmask = jnp.asarray([[True, True, False, True], [False] * m])  # target 1 is empty
  fb = jnp.asarray(rng.normal(size=(m2, d)) - 1.0, jnp.float32)
  fbm = jnp.asarray(np.arange(m2) < 7)
  target_of = jnp.asarray([0, 1, 0, 1, 1])
  kw = dict(rel_epsilon=1e-2, max_iterations=3000, threshold=1e-6)
  got = jax.jit(ot.wasserstein_with_fallback, static_argnames=("max_iterations", "batching"))(
      xs, xm, targets, tmask, target_of, fb, fbm, batching=batching, **kw)
  for i in range(p):
    j = int(target_of[i])
    y, ym = (targets[j], tmask[j]) if j == 0 else (fb, fbm)
    want = float(ot.wasserstein(xs[i], y, xm[i], ym, **kw))
    np.testing.assert_allclose(float(got[i]), want, rtol=1e-4)


def test_w2_lower_bound_matches_numpy_and_bounds_exact_w2():
  """Σ_d (Δmean² + Δstd²) by NumPy on the valid rows, and ≤ the exact W₂² (assignment)."""
  rng = np.random.default_rng(7)
  n, d = 10, 3
  xs = rng.normal(size=(3, n + 4, d)) * rng.uniform(0.5, 2, (3, 1, d)) + rng.normal(size=(3, 1, d))
  ys = rng.normal(size=(2, n + 2, d)) + rng.normal(size=(2, 1, d))
  xm = np.arange(n + 4)[None].repeat(3, 0) < n
  ym = np.arange(n + 2)[None].repeat(2, 0) < n
  xm[2] = False  # an empty cloud: +inf
  got = np.asarray(ot.w2_lower_bound(*map(jnp.asarray, (xs.astype(np.float32),
                                                        ys.astype(np.float32), xm, ym))))
  for p in range(2):
    for q in range(2):
      x, y = xs[p, :n], ys[q, :n]
      want = ((x.mean(0) - y.mean(0)) ** 2).sum() + ((x.std(0) - y.std(0)) ** 2).sum()
      np.testing.assert_allclose(got[p, q], want, rtol=1e-4)
      cost = ((x[:, None] - y[None]) ** 2).sum(-1)
      r, c = scipy.optimize.linear_sum_assignment(cost)
      assert got[p, q] <= cost[r, c].mean() * (1 + 1e-5)
  assert np.isposinf(got[2]).all()


@pytest.mark.parametrize("batching", ["map", "vmap"])
def test_wasserstein_argmin_equals_full_matrix(batching):
  """Branch and bound returns the full matrix's argmin (and its cost) with fewer solves; a
  column with no finite pair gets 0 like ``jnp.argmin``."""
  rng = np.random.default_rng(8)
  centres = rng.normal(size=(6, 5)) * 4
  xs = np.stack([centres[i] + rng.normal(size=(20, 5)) for i in range(6)]).astype(np.float32)
  ys = np.stack([centres[i] + rng.normal(size=(16, 5)) * 1.2 for i in (3, 0, 5, 1)])
  ys = ys.astype(np.float32)
  xm = np.arange(20)[None].repeat(6, 0) < rng.integers(8, 21, (6, 1))
  ym = np.arange(16)[None].repeat(4, 0) < rng.integers(6, 17, (4, 1))
  xm[1] = False   # an empty candidate never wins
  ym[3] = False   # an empty column: argmin 0, cost +inf
  args = [jnp.asarray(a) for a in (xs, ys, xm, ym)]
  kw = dict(rel_epsilon=1e-2, max_iterations=3000, threshold=1e-4, batching=batching,
            momentum=1.5)
  full = np.asarray(jax.jit(ot.wasserstein_matrix, static_argnames=tuple(kw))(*args, **kw))
  arg, cost, solves = jax.jit(ot.wasserstein_argmin, static_argnames=tuple(kw))(*args, **kw)
  np.testing.assert_array_equal(np.asarray(arg), np.argmin(full, axis=0))
  np.testing.assert_allclose(np.asarray(cost)[:3], full.min(0)[:3], rtol=1e-5)
  assert np.isposinf(float(cost[3])) and int(solves[3]) == 0
  assert int(np.sum(solves)) < 3 * 6  # well-separated clouds: most pairs are pruned
