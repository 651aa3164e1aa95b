"""BAIT: the incremental selection against a direct float64 NumPy transcription of the reference
(``JordanAsh/badge`` ``query_strategies/bait_sampling.py``: ``get_exp_grad_embedding`` and
``select``), which materialises every ``[K, K·D]`` Fisher factor and re-scores from ``A``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.strategies.bait import bait_select, fisher_factor
from tests.jal.strategies.random_context import random_context


def _ref_factors(probs, h):
  """The reference's ``embedding[i][ind][c·D:(c+1)·D] = h·(δ_{c,ind} − p_c)·√p_ind``."""
  n, k = probs.shape
  d = h.shape[1]
  v = np.zeros((n, k, k * d))
  for i in range(n):
    for ind in range(k):
      for c in range(k):
        v[i, ind, c * d:(c + 1) * d] = h[i] * ((c == ind) - probs[i, c])
      v[i, ind] *= np.sqrt(probs[i, ind])
  return v


def _ref_select(x, budget, fisher, iterates, lamb, n_labeled):
  """``bait_sampling.select`` in float64 NumPy; also returns the forward picks and scores."""
  rank, dim = x.shape[1], x.shape[2]
  inv = np.linalg.inv(lamb * np.eye(dim) + iterates * n_labeled / (n_labeled + budget))
  x = x * np.sqrt(budget / (n_labeled + budget))
  picks, gains = [], []
  for _ in range(min(2 * budget, len(x))):
    inner = np.linalg.inv(np.eye(rank)[None] + x @ inv @ x.transpose(0, 2, 1))
    trace = np.trace(x @ inv @ fisher @ inv @ x.transpose(0, 2, 1) @ inner, axis1=1, axis2=2)
    ind = next(j for j in np.argsort(trace)[::-1] if j not in picks)
    picks.append(ind)
    gains.append(trace[ind])
    xs = x[ind][None]
    inner = np.linalg.inv(np.eye(rank) + xs @ inv @ xs.transpose(0, 2, 1))
    inv = (inv - inv @ xs.transpose(0, 2, 1) @ inner @ xs @ inv)[0]
  forward = list(picks)
  removed = []
  for _ in range(len(picks) - budget):
    xs = x[picks]
    inner = np.linalg.inv(-np.eye(rank)[None] + xs @ inv @ xs.transpose(0, 2, 1))
    trace = np.trace(xs @ inv @ fisher @ inv @ xs.transpose(0, 2, 1) @ inner, axis1=1, axis2=2)
    d = int(np.argmin(-trace))
    xd = x[picks[d]][None]
    inner = np.linalg.inv(-np.eye(rank) + xd @ inv @ xd.transpose(0, 2, 1))
    inv = (inv - inv @ xd.transpose(0, 2, 1) @ inner @ xd @ inv)[0]
    removed.append(picks.pop(d))
  return picks, forward, np.asarray(gains), removed


def _reference(probs, h, labeled, budget, lam):
  """``BaitSampling.query``: Fisher over the pool, ``init`` over L, select among U."""
  v = _ref_factors(probs.astype(np.float64), h.astype(np.float64))
  fisher = np.einsum("nca,ncb->ab", v, v) / len(v)
  vl = v[labeled]
  init = np.einsum("nca,ncb->ab", vl, vl) / max(len(vl), 1)
  unl = np.flatnonzero(~labeled)
  sel, fwd, gains, removed = _ref_select(v[unl], budget, fisher, init, lam, int(labeled.sum()))
  return unl[sel], unl[fwd], gains, unl[removed]


def _toy(n, k, d, n_labeled, seed, logit_scale=2.0):
  rng = np.random.default_rng(seed)
  probs = np.asarray(jax.nn.softmax(logit_scale * rng.standard_normal((n, k)), -1), np.float64)
  h = np.maximum(rng.standard_normal((n, d)), 0.0) + 0.1 * rng.standard_normal((n, d))
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, n_labeled, replace=False)] = True
  return probs.astype(np.float32), h.astype(np.float32), labeled


def test_fisher_factor_matches_the_reference_embedding():
  probs, h, _ = _toy(6, 3, 4, 0, 0)
  q = np.asarray(fisher_factor(jnp.asarray(probs)), np.float64)
  v = np.einsum("nca,nd->ncad", q, h).reshape(6, 3, 12)
  np.testing.assert_allclose(v, _ref_factors(probs, h), rtol=1e-5, atol=1e-6)


# The first four share the compiled program (n, K, D, B and 2B fixed); the fifth has every
# unlabeled row forward-picked, the sixth all of them selected; the last a LeNet-like K = 10.
@pytest.mark.parametrize("n,k,d,n_labeled,budget,lam,seed", [
    (40, 3, 4, 8, 5, 1.0, 0),
    (40, 3, 4, 8, 5, 0.01, 1),
    (40, 3, 4, 0, 5, 1.0, 2),    # nothing labeled: A = I / λ
    (40, 3, 4, 20, 5, 1.0, 3),
    (40, 3, 4, 34, 5, 1.0, 4),   # 2B > |U| = 6: every unlabeled row is forward-picked
    (40, 3, 4, 35, 5, 1.0, 7),   # B = |U|: nothing to prune (the backward loop is skipped)
    (120, 10, 16, 30, 10, 1.0, 5),
])
def test_incremental_equals_reference(n, k, d, n_labeled, budget, lam, seed):
  probs, h, labeled = _toy(n, k, d, n_labeled, seed)
  want_sel, want_fwd, want_gains, want_removed = _reference(probs, h, labeled, budget, lam)
  got = bait_select(probs, h, labeled, budget, lam=lam)
  np.testing.assert_array_equal(got["forward"], want_fwd)
  np.testing.assert_array_equal(got["removed"], want_removed)
  np.testing.assert_array_equal(got["selected"], want_sel)
  # float32 Woodbury updates: errors scale with the largest gain (λ = 0.01 spans 3 decades).
  np.testing.assert_allclose(got["gains"], want_gains, rtol=2e-4,
                             atol=1e-5 * np.abs(want_gains).max())


def test_chunking_does_not_change_the_selection():
  probs, h, labeled = _toy(40, 3, 4, 8, 6)
  a = bait_select(probs, h, labeled, 5)
  b = bait_select(probs, h, labeled, 5, chunk_rows=7)
  np.testing.assert_array_equal(a["selected"], b["selected"])
  np.testing.assert_allclose(a["gains"], b["gains"], rtol=1e-5)


def test_strategy_selects_the_reference_rows():
  rng = np.random.default_rng(0)
  ctx = random_context(rng, 40, 3, 4, 0, np.arange(40) < 8)
  net, v, x, labeled = ctx.net, ctx.variables, ctx.x, np.asarray(ctx.labeled)
  idx = jal.select(jal.get_strategy("bait"), jax.random.key(0), ctx, 5)
  logits, emb = jal.predict(net, v, x)
  want = _reference(np.asarray(jax.nn.softmax(logits, -1)), np.asarray(emb), labeled, 5, 1.0)[0]
  np.testing.assert_array_equal(idx, want)
