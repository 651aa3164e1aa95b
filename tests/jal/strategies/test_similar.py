"""SIMILAR (FLQMI / FLVMI) against the set-function definitions and a NumPy greedy (§13)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import jal
from jal.strategies import similar

K, D = 3, 4


def _g(a, h):
  return np.concatenate([a, (a[:, :, None] * h[:, None, :]).reshape(len(a), -1)], axis=1)


def _cos_kernel(gx, gy):
  """sklearn's cosine (zero vectors give 0), mapped to [0, 1]."""
  nx, ny = np.linalg.norm(gx, axis=1), np.linalg.norm(gy, axis=1)
  nx, ny = np.where(nx > 0, nx, 1.0), np.where(ny > 0, ny, 1.0)
  return ((gx / nx[:, None]) @ (gy / ny[:, None]).T + 1.0) / 2.0


def _factors(seed, n):
  rng = np.random.default_rng(seed)
  p = rng.dirichlet(np.ones(K), n)
  a = p - np.eye(K)[rng.integers(0, K, n)]
  return a, rng.normal(size=(n, D))


def test_factorised_similarity_equals_the_explicit_cosine_kernel():
  a, h = _factors(0, 12)
  a[3] = 0.0  # a saturated softmax: zero gradient, similarity 1/2 to everything
  got = similar.similarity(*(jnp.asarray(t, jnp.float32) for t in (a, h, a, h)))
  want = _cos_kernel(_g(a, h), _g(a, h))
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
  assert np.allclose(np.asarray(got)[3], 0.5)


def _toy_kernel(seed, n, m):
  return np.random.default_rng(seed).uniform(size=(n, m))


def _memo_gains_flqmi(s, picks, eta):
  """Gains of every row after ``picks``, from the jitted greedy's own recurrence."""
  memo = np.max(s[picks], axis=0) if picks else np.zeros(s.shape[1])
  return np.maximum(s - memo[None, :], 0).sum(1) + eta * s.max(1)


@pytest.mark.parametrize("eta", [1.0, 0.3])
def test_flqmi_greedy_gains_equal_set_function_differences(eta):
  s = _toy_kernel(1, 30, 6)
  cand = np.ones(30, bool)
  idx, gains = similar.flqmi_greedy(jnp.asarray(s, jnp.float32), jnp.ones(6, bool),
                                    jnp.asarray(cand), eta, 10)
  idx, gains = np.asarray(idx).tolist(), np.asarray(gains)
  for t, i in enumerate(idx):
    a = idx[:t]
    diff = similar.flqmi_value(s[a + [i]], eta) - similar.flqmi_value(s[a], eta)
    assert gains[t] == pytest.approx(diff, abs=1e-5)
    # every candidate's memoised gain is its set-function difference too
    for j in (0, 7, 29):
      want = similar.flqmi_value(s[a + [j]], eta) - similar.flqmi_value(s[a], eta)
      assert _memo_gains_flqmi(s, a, eta)[j] == pytest.approx(want, abs=1e-9)


def test_flvmi_greedy_gains_equal_set_function_differences():
  eta = 0.7
  s = _toy_kernel(2, 25, 25)  # s[i, j]: candidate i, ground column j
  s_vq = _toy_kernel(3, 25, 4)
  cap = eta * s_vq.max(1)
  idx, gains = similar.flvmi_greedy(jnp.asarray(s, jnp.float32), jnp.asarray(cap, jnp.float32),
                                    jnp.ones(25, bool), jnp.ones(25, bool), 9)
  idx, gains = np.asarray(idx).tolist(), np.asarray(gains)
  for t, i in enumerate(idx):
    a = idx[:t]
    diff = (similar.flvmi_value(s[a + [i]].T, s_vq, eta) - similar.flvmi_value(s[a].T, s_vq, eta))
    assert gains[t] == pytest.approx(diff, abs=1e-5)


def _naive_greedy(value, n, cand, budget):
  """Naive greedy on set-function evaluations (ties: lowest index) and the smallest gap seen
  between the best gain and the next *different* one. FLVMI's capped terms make exact ties
  (rows whose only gain is ``c_j − m_j`` of one saturating column), which float32 reproduces
  exactly and both sides break to the lowest index."""
  picks, gaps = [], []
  for _ in range(budget):
    base = value(picks)
    gains = np.array([value(picks + [i]) - base if cand[i] and i not in picks else -np.inf
                      for i in range(n)])
    best = int(np.argmax(gains))
    picks.append(best)
    rest = gains[gains < gains[best] - 1e-12]
    gaps.append(gains[best] - rest.max() if rest.size else np.inf)
  return picks, min(gaps)


def test_greedies_equal_naive_set_function_greedy():
  eta = 1.0
  s = _toy_kernel(4, 30, 30)
  s_vq = _toy_kernel(5, 30, 5)
  cand = np.ones(30, bool)
  cand[::5] = False
  q_valid = np.array([True] * 5 + [False] * 3)  # padded query columns must not count
  s_q = np.concatenate([s_vq, np.full((30, 3), 0.99)], axis=1)
  want, gap = _naive_greedy(lambda a: similar.flqmi_value(s_vq[a], eta), 30, cand, 8)
  assert gap > 1e-4
  got, _ = similar.flqmi_greedy(jnp.asarray(s_q, jnp.float32), jnp.asarray(q_valid),
                                jnp.asarray(cand), eta, 8)
  assert np.asarray(got).tolist() == want
  v_valid = np.arange(30) < 26  # padded ground columns must not count
  want, gap = _naive_greedy(lambda a: similar.flvmi_value(s[a].T[:26], s_vq[:26], eta), 30,
                            cand, 8)
  assert gap > 1e-4
  got, _ = similar.flvmi_greedy(jnp.asarray(s, jnp.float32),
                                jnp.asarray(eta * s_vq.max(1), jnp.float32),
                                jnp.asarray(v_valid), jnp.asarray(cand), 8)
  assert np.asarray(got).tolist() == want


def test_query_rows_tail_classes_and_fallbacks():
  y = np.array([0] * 6 + [1] * 4 + [2] * 1 + [3] * 1 + [4] * 5)
  labeled = np.ones(y.size, bool)
  labeled[0] = False
  # L counts: 5, 4, 1, 1, 5 (class 0 minus the unlabeled row): median 4 → tail = {2, 3}
  q = similar.query_rows(jax.random.key(0), y, labeled, 5, "tail")
  assert q.tolist() == [10, 11]
  balanced = np.isin(np.arange(y.size), [0, 6, 10, 11, 12])
  assert similar.query_rows(jax.random.key(0), y, balanced, 5).tolist() == [0, 6, 10, 11, 12]
  assert similar.query_rows(jax.random.key(0), y, labeled, 5, "labeled").tolist() == \
      np.flatnonzero(labeled).tolist()
  capped = similar.query_rows(jax.random.key(1), y, labeled, 5, "labeled", max_rows=4)
  assert capped.size == 4 and labeled[capped].all() and np.all(np.diff(capped) > 0)


@pytest.fixture(scope="module")
def ctx():
  digits = load_digits()
  x = digits.images[:150].astype(np.float32)
  x = ((x - x.mean()) / x.std())[..., None]
  y = digits.target[:150].astype(np.int32)
  net = jal.make_net("mlp", x.shape[1:], 10, hidden=(16,))
  labeled = np.zeros(150, bool)
  labeled[:40] = True
  return jal.Context(net, net.init(jax.random.key(0)), jnp.asarray(x), jnp.asarray(y),
                     jnp.asarray(labeled), 10, chunk_size=32)


@pytest.mark.parametrize("function", similar.FUNCTIONS)
def test_strategy_equals_the_greedy_on_the_explicit_kernel(ctx, function):
  eta = 1.0
  strategy = jal.get_strategy("similar", function=function)
  idx = jal.select(strategy, jax.random.key(0), ctx, 10)
  logits, emb = (np.asarray(t, np.float64) for t in jal.predict(ctx.net, ctx.variables, ctx.x))
  y, lab = np.asarray(ctx.y), np.asarray(ctx.labeled)
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  g_u = _g(p - np.eye(10)[p.argmax(1)], emb)
  q = similar.query_rows(jax.random.key(0), y, lab, 10)  # 40 labeled rows: no subsample
  g_q = _g(p[q] - np.eye(10)[y[q]], emb[q])
  s_uq = _cos_kernel(g_u, g_q)
  if function == "flqmi":
    value = lambda a: similar.flqmi_value(s_uq[a], eta)
  else:  # 110 unlabeled rows <= max_columns: the ground set is all of U (exact FLVMI)
    unl = np.flatnonzero(~lab)
    s_uu = _cos_kernel(g_u, g_u[unl])
    value = lambda a: similar.flvmi_value(s_uu[a].T, s_uq[unl], eta)
  want, gap = _naive_greedy(value, 150, ~lab, 10)
  assert gap > 1e-4
  assert idx.tolist() == want


def test_flvmi_ground_subset_and_memory_stay_below_n_squared():
  n, m = 4096, 64
  a, h = (jnp.asarray(t, jnp.float32) for t in _factors(6, n))
  idx = jnp.arange(m)
  lowered = similar.flvmi_select.lower(
      a, h, a[:8], h[:8], jnp.ones(8, bool), idx, jnp.ones(m, bool), jnp.ones(n, bool),
      jnp.float32(1.0), budget=5, chunk_size=512)
  mem = lowered.compile().memory_analysis()
  live = mem.temp_size_in_bytes + mem.output_size_in_bytes
  assert live < n * n * 4 / 8  # an n × n float32 kernel would be 8× this bound
  assert live >= n * m * 4  # the [n, m] kernel is resident


def test_bad_options_are_refused():
  with pytest.raises(ValueError, match="function"):
    similar.similar_strategy(function="fl3mi")
  with pytest.raises(ValueError, match="query"):
    similar.similar_strategy(query="rare")
