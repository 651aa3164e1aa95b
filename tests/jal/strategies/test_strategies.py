"""Tests for jal.strategies: the select contract, NumPy references, errors, finalize_indices."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

import jal
from jal import cluster
from jal.strategies import (
  STRATEGIES,
  check_budget,
  finalize_indices,
  get_strategy,
  register_strategy,
)

N = 200
K = 10
N_LABELED = 60
BUDGET = 25


def _mask(n_labeled, seed):
  rng = np.random.default_rng(seed)
  labeled = np.zeros(N, bool)
  labeled[rng.choice(N, size=n_labeled, replace=False)] = True
  return labeled


@pytest.fixture(scope="module")
def ctx():
  """200 standardised 8×8 digits, a random-init MLP with dropout (so BALD works), 60 labeled."""
  digits = load_digits()
  x = digits.images[:N].astype(np.float32)
  x = ((x - x.mean()) / x.std())[..., None]
  y = digits.target[:N].astype(np.int32)
  net = jal.make_net("mlp", x.shape[1:], K, hidden=(16,), dropout=0.25)
  variables = net.init(jax.random.key(0))
  x_val = ((digits.images[-40:] - digits.images[:N].mean()) / digits.images[:N].std())
  return jal.Context(net, variables, jnp.asarray(x), jnp.asarray(y),
                     jnp.asarray(_mask(N_LABELED, 0)), K,
                     x_val=jnp.asarray(x_val[..., None], jnp.float32),  # GLISTER's split
                     y_val=jnp.asarray(digits.target[-40:], jnp.int32))


@pytest.fixture(scope="module")
def outputs(ctx):
  """``jal.predict`` logits and embeddings of the pool (float64 NumPy)."""
  logits, emb = jal.predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size)
  return np.asarray(logits, np.float64), np.asarray(emb, np.float64)


def _with_mask(ctx, labeled):
  return ctx._replace(labeled=jnp.asarray(labeled))


def _check_selection(idx, labeled, budget):
  labeled = np.asarray(labeled)
  assert isinstance(idx, np.ndarray)
  assert np.issubdtype(idx.dtype, np.integer)
  assert idx.shape == (budget,)
  assert np.all((idx >= 0) & (idx < labeled.size))
  assert np.unique(idx).size == budget
  assert not np.any(labeled[idx])


def _np_softmax(logits):
  z = logits - logits.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _np_entropy(p):
  return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def _check_top_k(idx, score, labeled, budget, tol=1e-6):
  """``idx`` are the ``budget`` highest ``score`` among unlabeled rows, in decreasing order.

  Exact set equality unless the k-th and (k+1)-th scores are within ``tol`` (a near tie that
  float32 vs float64 may break either way); the threshold property holds regardless.
  """
  labeled = np.asarray(labeled)
  masked = np.where(labeled, -np.inf, score)
  order = np.argsort(-masked, kind="stable")
  chosen = masked[idx]
  rest = np.setdiff1d(np.flatnonzero(~labeled), idx)
  assert np.all(np.diff(chosen) <= tol)  # Returned best-first.
  if rest.size:
    assert chosen.min() >= masked[rest].max() - tol
  sorted_scores = masked[order]
  if budget == (~labeled).sum() or sorted_scores[budget - 1] - sorted_scores[budget] > tol:
    np.testing.assert_array_equal(np.sort(idx), np.sort(order[:budget]))


# ----------------------------------------------------------------------------- contract


# BRAL-T's strategies run 30 RL samplings (~40 s each here): in the slow suite for these
# generic contract tests; tests/test_bralt.py and tests/jal/bralt/ cover them in the default suite.
_BRALT = ("bral_t", "bral_t_wo_cl", "bral_diffset", "pseudo_score", "gradnd_gt")
# RAMBO / DULO / null are one-round methods (S₀ of k = k1 + τ₁·b points, B a multiple of b, a
# validation split): tests/jal/rambo/test_strategy.py runs them through the loop.
_ONE_ROUND = ("rambo", "dulo", "null")
# The learned baselines score with what their own fit trained (ctx.fit_extra) or train models
# inside score: tests/jal/strategies/learned/ runs these contract checks with a fitted context.
_LEARNED = ("lossprediction", "waal", "vaal")
_STRATEGY_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in _BRALT else n
                    for n in sorted(STRATEGIES) if n not in _ONE_ROUND + _LEARNED]

@pytest.mark.parametrize("name", _STRATEGY_PARAMS)
def test_select_contract(ctx, name):
  idx = jal.select(get_strategy(name), jax.random.key(1), ctx, BUDGET)
  _check_selection(idx, ctx.labeled, BUDGET)


@pytest.mark.parametrize("name", _STRATEGY_PARAMS)
def test_raw_pick_is_already_valid(ctx, name):
  # The strategy itself (before finalize_indices tops up / dedups) returns [budget] indices;
  # all but k-means (which may leave clusters empty) must already be unique and unlabeled.
  strategy = get_strategy(name)
  k_score, k_pick = jax.random.split(jax.random.key(2))
  raw = np.asarray(strategy.pick(k_pick, ctx, strategy.score(k_score, ctx), BUDGET)[0])
  assert raw.shape == (BUDGET,)
  assert np.all((raw >= 0) & (raw < N))
  if name != "kmeans":
    _check_selection(raw, ctx.labeled, BUDGET)


@pytest.mark.parametrize("name", _STRATEGY_PARAMS)
def test_same_key_same_selection(ctx, name):
  s = get_strategy(name)
  a = jal.select(s, jax.random.key(7), ctx, BUDGET)
  b = jal.select(s, jax.random.key(7), ctx, BUDGET)
  np.testing.assert_array_equal(a, b)


def test_random_depends_on_key(ctx):
  s = get_strategy("random")
  a = jal.select(s, jax.random.key(7), ctx, BUDGET)
  b = jal.select(s, jax.random.key(8), ctx, BUDGET)
  assert set(a.tolist()) != set(b.tolist())


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(["random", "margin", "coreset"]),
       n_labeled=st.sampled_from([0, 1, 60, 175]),
       budget=st.sampled_from([1, 7, 25]),
       seed=st.integers(0, 2**32 - 1),
       key=st.integers(0, 2**31 - 1))
def test_select_contract_property(ctx, name, n_labeled, budget, seed, key):
  # Shapes stay fixed (n = 200); only the mask contents and a few static budgets vary.
  labeled = _mask(n_labeled, seed)
  idx = jal.select(get_strategy(name), jax.random.key(key), _with_mask(ctx, labeled), budget)
  _check_selection(idx, labeled, budget)


def test_budget_equal_to_unlabeled_returns_all(ctx):
  labeled = _mask(N - BUDGET, 3)
  c = _with_mask(ctx, labeled)
  for name in ("random", "margin", "coreset", "badge"):
    s = get_strategy(name)
    idx = jal.select(s, jax.random.key(0), c, BUDGET)
    np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(~labeled))
    # Already so before finalize_indices' clean-up (no duplicates to top up).
    raw = np.asarray(s.pick(jax.random.key(1), c, s.score(jax.random.key(2), c), BUDGET)[0])
    np.testing.assert_array_equal(np.sort(raw), np.flatnonzero(~labeled), err_msg=name)


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize("name,score_fn", [
    ("margin", lambda p: -(np.sort(p, -1)[:, -1] - np.sort(p, -1)[:, -2])),
    ("entropy", _np_entropy),
    ("least_confidence", lambda p: 1.0 - p.max(-1)),
])
def test_uncertainty_picks_numpy_top_k(ctx, outputs, name, score_fn):
  score = score_fn(_np_softmax(outputs[0]))
  for n_labeled, seed in ((N_LABELED, 0), (0, 1)):
    labeled = _mask(n_labeled, seed)
    idx = jal.select(get_strategy(name), jax.random.key(0), _with_mask(ctx, labeled), BUDGET)
    _check_top_k(idx, score, labeled, BUDGET)


def test_bald_picks_numpy_top_k_of_its_mc_samples(ctx):
  s = get_strategy("bald")
  mc = s.score(jax.random.key(4), ctx)
  assert mc.shape == (10, N, K)
  p = np.asarray(mc, np.float64)
  bald = _np_entropy(p.mean(0)) - _np_entropy(p).mean(0)
  idx = np.asarray(s.pick(jax.random.key(5), ctx, mc, BUDGET)[0])
  _check_top_k(idx, bald, ctx.labeled, BUDGET, tol=1e-5)
  # The samples are MC-dropout passes: they differ, and their spread is
  # what BALD measures (with dropout off every pass is equal and the check above is vacuous).
  assert np.mean(p.std(axis=0)) > 1e-3 and bald.max() > 1e-3
  no_dropout = ctx._replace(net=jal.make_net("mlp", ctx.x.shape[1:], K, hidden=(16,)))
  with pytest.raises(ValueError, match="bald needs a model with dropout > 0"):
    s.score(jax.random.key(4), no_dropout)


def _sq_dists(emb):
  return ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)


def _np_kcenter(emb, labeled, budget):
  """Brute-force greedy k-center in float64.

  Returns the picks, each pick's squared distance to its nearest centre, the smallest gap
  between the best and the runner-up candidate over all steps, and the final min-distances.
  """
  d = _sq_dists(emb)
  min_d = d[:, labeled].min(1)
  avail = ~labeled
  picks, radii, gap = [], [], np.inf
  for _ in range(budget):
    cand = np.where(avail, min_d, -np.inf)
    top2 = np.sort(cand)[-2:]
    gap = min(gap, top2[1] - top2[0])
    j = int(np.argmax(cand))
    picks.append(j)
    radii.append(cand[j])
    avail[j] = False
    min_d = np.minimum(min_d, d[:, j])
  return np.asarray(picks), np.asarray(radii), gap, min_d


def test_coreset_matches_numpy_greedy_k_center(ctx, outputs):
  emb = outputs[1]
  labeled = np.asarray(ctx.labeled)
  idx = jal.select(get_strategy("coreset"), jax.random.key(0), ctx, BUDGET)
  want, radii, gap, final_min_d = _np_kcenter(emb, labeled, BUDGET)
  # Each pick's squared distance to the centres chosen before it (labeled + earlier picks).
  d = _sq_dists(emb)
  centres = labeled.copy()
  got_radii = []
  for j in idx:
    got_radii.append(d[j, centres].min())
    centres[j] = True
  np.testing.assert_allclose(got_radii, radii, rtol=1e-5)
  # The achieved covering radius (max over the pool of the distance to the nearest centre).
  np.testing.assert_allclose(d[:, centres].min(1).max(), final_min_d.max(), rtol=1e-5)
  if gap > 1e-5 * radii[0]:  # No near ties: the very same picks in the same order.
    np.testing.assert_array_equal(idx, want)


def test_coreset_without_labels_starts_farthest_from_mean(ctx, outputs):
  emb = outputs[1]
  labeled = np.zeros(N, bool)
  idx = jal.select(get_strategy("coreset"), jax.random.key(0), _with_mask(ctx, labeled), 7)
  first = int(np.argmax(((emb - emb.mean(0)) ** 2).sum(-1)))
  assert idx[0] == first
  centres = np.zeros(N, bool)
  centres[first] = True
  d = _sq_dists(emb)
  for j in idx[1:]:  # Every later pick is a farthest point from the current centres.
    min_d = d[:, centres].min(1)
    assert min_d[j] >= np.where(centres, -np.inf, min_d).max() * (1 - 1e-5)
    centres[j] = True


def test_badge_picks_distinct_gradient_embeddings(ctx, outputs):
  logits, emb = outputs
  p = _np_softmax(logits)
  a = p - np.eye(K)[p.argmax(-1)]
  g = (a[:, :, None] * emb[:, None, :]).reshape(N, -1)  # [n, K·D]
  idx = jal.select(get_strategy("badge"), jax.random.key(3), ctx, BUDGET)
  _check_selection(idx, ctx.labeled, BUDGET)
  gi = g[idx]
  d = ((gi[:, None, :] - gi[None, :, :]) ** 2).sum(-1)
  np.fill_diagonal(d, np.inf)
  assert d.min() > 1e-6 * (gi ** 2).sum(-1).max()


def test_badge_is_kmeans_plusplus_on_numpy_gradient_embeddings(ctx, outputs):
  # Reference: BADGE = k-means++ seeding on g = (p − onehot(ŷ)) ⊗ e, built here in NumPy and
  # seeded by jal.cluster.kmeans_plusplus (D² sampling, tested against its distribution in
  # tests/jal/cluster) with the same key; a wrong factor (sign, label, or e) changes the picks.
  logits, emb = outputs
  p = _np_softmax(logits)
  g = ((p - np.eye(K)[p.argmax(-1)])[:, :, None] * emb[:, None, :]).reshape(N, -1)
  s = get_strategy("badge")
  out = s.score(jax.random.key(0), ctx)
  for seed in range(3):
    key = jax.random.key(seed)
    got = np.asarray(s.pick(key, ctx, out, BUDGET)[0])
    want = np.asarray(cluster.kmeans_plusplus(key, jnp.asarray(g, jnp.float32), BUDGET,
                                              ~ctx.labeled))
    np.testing.assert_array_equal(got, want)


def test_kmeans_picks_the_member_nearest_each_blob_centre(ctx):
  # Reference: on B = 5 blobs 1,000 standard deviations apart, k-means with B clusters finds
  # the blobs (a seeding that misses one has probability ~1e-6), and the pick of each is its
  # unlabeled member nearest the blob's mean (NumPy).
  rng = np.random.default_rng(0)
  b = 5
  member = np.arange(N) % b
  emb = rng.normal(size=(b, 6))[member] * 1000.0 + rng.normal(size=(N, 6))
  labeled = np.asarray(ctx.labeled)
  out = (None, jnp.asarray(emb, jnp.float32))
  for seed in range(3):
    got = np.sort(np.asarray(get_strategy("kmeans").pick(jax.random.key(seed), ctx, out, b)[0]))
    want = []
    for c in range(b):
      rows = np.flatnonzero((member == c) & ~labeled)
      want.append(rows[np.argmin(((emb[rows] - emb[rows].mean(0)) ** 2).sum(-1))])
    np.testing.assert_array_equal(got, np.sort(want))


def test_badge_and_kmeans_differ_from_uncertainty_top_k(ctx):
  # Sanity: diversity strategies are not just the margin top-k.
  margin = set(jal.select(get_strategy("margin"), jax.random.key(0), ctx, BUDGET).tolist())
  for name in ("badge", "coreset", "kmeans"):
    assert set(jal.select(get_strategy(name), jax.random.key(0), ctx, BUDGET).tolist()) != margin


# ----------------------------------------------------------------------------- errors


def test_budget_larger_than_unlabeled_raises(ctx):
  n_unlabeled = N - N_LABELED
  for name in ("random", "coreset"):
    with pytest.raises(ValueError, match=f"exceeds the {n_unlabeled} unlabeled"):
      jal.select(get_strategy(name), jax.random.key(0), ctx, n_unlabeled + 1)


@pytest.mark.parametrize("budget", [0, -3, 2.5, "3", float("nan"), float("inf")])
def test_bad_budget_raises(ctx, budget):
  with pytest.raises(ValueError, match="budget must be a positive integer"):
    jal.select(get_strategy("random"), jax.random.key(0), ctx, budget)


def test_integral_budgets_accepted():
  labeled = np.zeros(10, bool)
  assert check_budget(labeled, np.int64(4)) == 4
  assert check_budget(labeled, 10) == 10
  assert type(check_budget(labeled, np.int32(3))) is int


def test_get_strategy_unknown_lists_names():
  with pytest.raises(ValueError, match="nope") as info:
    get_strategy("nope")
  for name in STRATEGIES:
    assert repr(name) in str(info.value)


def test_get_strategy_builds_named_strategies():
  for name in STRATEGIES:
    s = get_strategy(name)
    assert isinstance(s, jal.Strategy) and s.name == name
    assert callable(s.score) and callable(s.pick)


def test_register_strategy_rejects_duplicates():
  with pytest.raises(ValueError, match="already registered"):
    register_strategy("random", STRATEGIES["random"])
  name = "_test_only_strategy"
  try:
    register_strategy(name, STRATEGIES["random"])
    assert get_strategy(name).name == "random"
    with pytest.raises(ValueError, match="already registered"):
      register_strategy(name, STRATEGIES["margin"])
  finally:
    STRATEGIES.pop(name, None)
  assert name not in STRATEGIES


# ----------------------------------------------------------------------------- finalize


def test_finalize_indices_drops_duplicates_and_labeled_keeps_order():
  labeled = np.zeros(12, bool)
  labeled[[0, 1, 2]] = True
  idx = finalize_indices(jax.random.key(0), np.array([5, 1, 5, 3, 9, 0, 3, 11]), labeled, 4)
  np.testing.assert_array_equal(idx, [5, 3, 9, 11])


def test_finalize_indices_tops_up_to_budget():
  labeled = np.zeros(12, bool)
  labeled[[0, 1, 2]] = True
  raw = jnp.asarray([7, 7, 1, 4, 0], jnp.int32)
  idx = finalize_indices(jax.random.key(0), raw, labeled, 6)
  assert idx.shape == (6,)
  np.testing.assert_array_equal(idx[:2], [7, 4])  # Kept picks come first, in order.
  assert np.unique(idx).size == 6 and not labeled[idx].any()
  assert np.all((idx >= 0) & (idx < 12))
  # Deterministic in the key; budget == #unlabeled takes everything.
  np.testing.assert_array_equal(idx, finalize_indices(jax.random.key(0), raw, labeled, 6))
  full = finalize_indices(jax.random.key(1), raw, labeled, 9)
  np.testing.assert_array_equal(np.sort(full), np.arange(3, 12))


def test_finalize_indices_top_up_is_uniform():
  labeled = np.zeros(10, bool)
  counts = np.zeros(10)
  for i in range(200):
    counts[finalize_indices(jax.random.key(i), np.array([4]), labeled, 2)] += 1
  assert counts[4] == 200
  others = np.delete(counts, 4)
  # 200 draws over 9 rows: expected 22.2 each; a loose 5-sigma band.
  assert np.all(np.abs(others - 200 / 9) < 5 * math.sqrt(200 / 9))
