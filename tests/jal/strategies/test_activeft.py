"""ActiveFT's selection step: the loss against a NumPy transcription of ``SampleModel.get_loss``,
where its gradient goes, the whole selection against an unchunked transcription of
``optimize_dist`` (exp / max / log as the reference writes them), and the strategy's output."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jal
from jal.cluster import top_k_unlabeled
from jal.strategies.activeft import activeft_loss, activeft_select, normalize
from tests.jal.strategies.random_context import random_context

TAU = 0.07


def _features(n, d, seed):
  f = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
  return f / np.linalg.norm(f, axis=1, keepdims=True)


def _ref_loss_np(theta, f, temperature=TAU, balance=1.0):
  """``get_loss`` in float64 NumPy."""
  c = theta / np.linalg.norm(theta, axis=1, keepdims=True)
  prod_exp = np.exp(f @ c.T / temperature)
  pos, pos_k = prod_exp.max(1), prod_exp.argmax(1)
  cent = np.exp(c @ c.T / temperature).sum(0)
  return -np.mean(np.log(pos) - np.log(pos + cent[pos_k] * balance))


def _assign(theta, f):
  return jnp.argmax(f @ normalize(theta).T, axis=1)


def test_loss_equals_the_reference_formula():
  f = _features(50, 6, 0)
  theta = 1.3 * _features(7, 6, 1)
  got = float(activeft_loss(jnp.asarray(theta), jnp.asarray(f), _assign(theta, f), TAU, 0.7))
  want = _ref_loss_np(theta.astype(np.float64), f.astype(np.float64), TAU, 0.7)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_gradient_reaches_assigned_centroids_and_the_live_side_of_r():
  f = _features(40, 5, 2)
  f[:, 0] = np.abs(f[:, 0]) + 1.0  # every feature in the half-space x₀ > 0 ...
  f /= np.linalg.norm(f, axis=1, keepdims=True)
  far = np.eye(5, dtype=np.float32)[:1] * -2.0  # ... and the 6th centroid in x₀ < 0
  theta = np.concatenate([1.3 * f[:5], far])
  assign = _assign(theta, f)
  assert 5 not in set(np.asarray(assign).tolist())
  g = jax.grad(activeft_loss)(jnp.asarray(theta), jnp.asarray(f), assign)
  np.testing.assert_array_equal(np.asarray(g[5]), 0.0)  # no row assigned: no gradient at all
  assert np.all(np.abs(np.asarray(g[:5])).sum(1) > 0)

  def loss_split(live, frozen):  # R_k = Σ_j exp(θ̂_j(frozen) · θ̂_k(live) / τ)
    th, fr = normalize(live), normalize(frozen)
    s = jnp.sum(f * th[assign], -1) / TAU
    log_r = jax.nn.logsumexp(fr @ th.T / TAU, axis=0)
    return -jnp.mean(s - jnp.logaddexp(s, log_r[assign]))

  want = jax.grad(loss_split)(jnp.asarray(theta), jnp.asarray(theta))
  np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-5, atol=1e-7)
  both = jax.grad(lambda t: loss_split(t, t))(jnp.asarray(theta))  # no stop-gradient
  assert not np.allclose(np.asarray(both), np.asarray(g), rtol=1e-3)


def _ref_optimize(init_theta, f, iters, lr=1e-3):
  """``optimize_dist`` unchunked, with the loss as the reference writes it (``exp``, ``max``,
  ``log``) and Adam's defaults (PyTorch's equal optax's)."""
  def loss(theta):
    c = normalize(theta)
    prod_exp = jnp.exp(f @ c.T / TAU)
    pos = jnp.max(prod_exp, axis=1)
    pos_k = jnp.argmax(prod_exp, axis=1)
    cent = jnp.sum(jnp.exp(jax.lax.stop_gradient(c) @ c.T / TAU), axis=0)
    return -jnp.mean(jnp.log(pos) - jnp.log(pos + cent[pos_k]))

  opt = optax.adam(lr)
  theta, state = init_theta, opt.init(init_theta)
  for _ in range(iters):
    g = jax.grad(loss)(theta)
    upd, state = opt.update(g, state, theta)
    theta = optax.apply_updates(theta, upd)
  c = normalize(theta)
  dist = np.asarray(c @ f.T)
  chosen = []
  for row in dist:  # per centroid, the best row not chosen yet
    chosen.append(next(int(j) for j in np.argsort(-row, kind="stable") if j not in chosen))
  return theta, chosen


def test_selection_equals_the_unchunked_reference():
  f = _features(90, 8, 4)
  key = jax.random.key(1)
  k, iters = 6, 40
  idx, theta, losses = activeft_select(key, f, k, iters=iters, lr=1e-2, chunk_size=16)
  init = top_k_unlabeled(jax.random.uniform(key, (90,)), jnp.zeros(90, bool), k)
  want_theta, want_idx = _ref_optimize(jnp.asarray(f)[init], jnp.asarray(f), iters, lr=1e-2)
  np.testing.assert_allclose(np.asarray(theta), np.asarray(want_theta), rtol=1e-4, atol=1e-5)
  assert np.asarray(idx).tolist() == want_idx
  assert losses.shape == (iters,) and float(losses[-1]) < float(losses[0])


def test_strategy_returns_budget_distinct_unlabeled_rows():
  rng = np.random.default_rng(5)
  ctx = random_context(rng, 60, 4, 8, 0, 45)
  labeled = np.asarray(ctx.labeled)
  s = jal.get_strategy("activeft", iters=20)
  for budget in (5, 15):  # 15: every unlabeled row
    idx = np.asarray(s.pick(jax.random.key(2), ctx, s.score(None, ctx), budget)[0])
    assert idx.shape == (budget,) and len(set(idx.tolist())) == budget
    assert not labeled[idx].any()


def test_output_never_repeats_a_row():
  # Six identical selectable rows: all centroids coincide, so without de-duplication every
  # centroid would return the same row.
  f = _features(30, 4, 6)
  f[:6] = f[0]
  mask = np.zeros(30, bool)
  mask[:6] = True
  idx, _, _ = activeft_select(jax.random.key(0), f, 6, jnp.asarray(mask), iters=3)
  assert sorted(np.asarray(idx).tolist()) == list(range(6))
