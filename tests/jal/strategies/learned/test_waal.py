"""WAAL against BASELINES.md §2 (NumPy references) and the joint data stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.strategies.learned import common, waal


def _np_critic(params, z):
  h = z
  for i, layer in enumerate(params):
    h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
    if i < len(params) - 1:
      h = np.maximum(h, 0)
  return 1 / (1 + np.exp(-h[:, 0]))


def _np_input_grad(params, z, eps=1e-5):
  """∇_z D(z) per row by central differences (float64)."""
  g = np.zeros_like(z)
  for d in range(z.shape[1]):
    e = np.zeros_like(z)
    e[:, d] = eps
    g[:, d] = (_np_critic(params, z + e) - _np_critic(params, z - e)) / (2 * eps)
  return g


def test_query_picks_the_smallest_u_minus_10d_on_a_toy_table():
  p = np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.6, 0.3, 0.1], [0.5, 0.49, 0.01],
                [0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8]])
  d = np.array([0.1, 0.2, 0.9, 0.5, 0.95, 0.05, 0.3, 0.6])
  labeled = np.array([False, False, False, True, False, False, False, False])
  logp = np.log(p)
  total = 0.5 * np.linalg.norm(logp, axis=1) + 0.5 * np.sum(-logp, axis=1) - 10 * d
  order = [i for i in np.argsort(total, kind="stable") if not labeled[i]]
  scores = waal.waal_scores(jnp.asarray(np.log(p), jnp.float32), jnp.asarray(d, jnp.float32))
  np.testing.assert_allclose(np.asarray(scores), -total, rtol=1e-5, atol=1e-5)
  picked = jal.cluster.top_k_unlabeled(scores, jnp.asarray(labeled), 3)
  assert list(np.asarray(picked)) == order[:3]


def test_input_gradients_from_one_vjp_equal_per_row_grads():
  params = waal.critic_init(jax.random.key(0), 6, width=16)
  z = jax.random.normal(jax.random.key(1), (9, 6))
  one = waal.input_gradients(params, z)
  per_row = jax.vmap(jax.grad(lambda r: waal.critic_apply(params, r[None])[0]))(z)
  np.testing.assert_allclose(np.asarray(one), np.asarray(per_row), rtol=1e-6, atol=1e-8)
  np.testing.assert_allclose(np.asarray(one), _np_input_grad(params, np.asarray(z, np.float64)),
                             rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("gp_sign", [-1.0, 1.0])
def test_critic_loss_sign(gp_sign):
  rng = np.random.default_rng(0)
  params = waal.critic_init(jax.random.key(2), 4, width=8)
  z_u, z_l = (rng.normal(size=(5, 4)) for _ in range(2))
  w = np.ones(5)
  key = jax.random.key(3)
  hp = waal.WaalConfig(alpha=0.5, mu_d=2.0, gp_sign=gp_sign)
  got = float(waal.critic_loss(params, jnp.asarray(z_u, jnp.float32), jnp.asarray(z_l, jnp.float32),
                               jnp.asarray(w, jnp.float32), key, 0.7, hp))
  u = np.asarray(jax.random.uniform(key, (5, 1)), np.float64)
  rows = np.concatenate([z_u + u * (z_l - z_u), z_u, z_l])
  gp = np.mean((np.linalg.norm(_np_input_grad(params, rows), axis=1) - 1) ** 2)
  wd = _np_critic(params, z_u).mean() - 0.7 * _np_critic(params, z_l).mean()
  # as coded in both references: minimise −αW − α·μ_d·GP (gp_sign = −1); +1: WGAN-GP
  assert got == pytest.approx(-0.5 * wd + gp_sign * 0.5 * 2.0 * gp, rel=1e-4, abs=1e-6)


def test_padding_rows_carry_no_weight_in_w_and_gp():
  params = waal.critic_init(jax.random.key(4), 3, width=8)
  rng = np.random.default_rng(1)
  z_u, z_l = (jnp.asarray(rng.normal(size=(6, 3)), jnp.float32) for _ in range(2))
  w = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
  key = jax.random.key(5)
  junk_u, junk_l = z_u.at[4:].set(30.0), z_l.at[4:].set(-30.0)
  for fn in (lambda a, b: waal.wasserstein(params, a, b, w, 0.3),
             lambda a, b: waal.gradient_penalty(params, a, b, w, key)):
    assert float(fn(z_u, z_l)) == pytest.approx(float(fn(junk_u, junk_l)), rel=1e-6)
  # W's means are the means over the real rows
  want = (_np_critic(params, np.asarray(z_u[:4], np.float64)).mean()
          - 0.3 * _np_critic(params, np.asarray(z_l[:4], np.float64)).mean())
  assert float(waal.wasserstein(params, z_u, z_l, w, 0.3)) == pytest.approx(want, rel=1e-5)
  # GP: the weighted mean over the 3 × 4 real rows
  u = np.asarray(jax.random.uniform(key, (6, 1)), np.float64)[:4]
  zu, zl = np.asarray(z_u[:4], np.float64), np.asarray(z_l[:4], np.float64)
  rows = np.concatenate([zu + u * (zl - zu), zu, zl])
  gp = np.mean((np.linalg.norm(_np_input_grad(params, rows), axis=1) - 1) ** 2)
  assert float(waal.gradient_penalty(params, z_u, z_l, w, key)) == pytest.approx(gp, rel=1e-4)


def _epoch_rows(mask, bsz, cap=None, seed=0):
  plan = common.joint_begin(jax.random.key(seed), jnp.asarray(mask), bsz, cap)
  lab, unl, wts = [], [], []
  for s in range(int(plan.steps)):
    i_l, i_u, w = common.joint_batch(plan, jnp.int32(s), bsz)
    lab.append(np.asarray(i_l))
    unl.append(np.asarray(i_u))
    wts.append(np.asarray(w))
  return plan, np.concatenate(lab), np.concatenate(unl), np.concatenate(wts)


def test_joint_stream_visits_every_row_and_cycles_the_smaller_set():
  n = 50
  mask = np.zeros(n, bool)
  mask[[3, 7, 11, 20, 41]] = True  # n_L = 5, n_U = 45
  plan, lab, unl, w = _epoch_rows(mask, 8)
  assert int(plan.steps) == 6 and w.sum() == 45  # ⌈45 / 8⌉ steps, T = 45 real slots
  real = w > 0
  assert mask[lab].all() and not mask[unl].any()
  np.testing.assert_array_equal(np.sort(unl[real]), np.flatnonzero(~mask))  # each once
  counts = np.bincount(lab[real], minlength=n)[mask]
  assert counts.sum() == 45 and counts.min() == counts.max() == 9  # L cycled evenly
  # n_L > n_U: the unlabeled rows are cycled instead
  plan, lab, unl, w = _epoch_rows(~mask, 8)
  np.testing.assert_array_equal(np.sort(lab[w > 0]), np.flatnonzero(~mask))
  assert set(unl[w > 0]) == set(np.flatnonzero(mask))


def test_unlabeled_cap_bounds_the_epoch():
  n = 60
  mask = np.zeros(n, bool)
  mask[:6] = True
  plan, lab, unl, w = _epoch_rows(mask, 4, cap=10, seed=2)
  assert int(plan.steps) == 3 and w.sum() == 10
  real = w > 0
  assert len(set(unl[real])) == 10 and not mask[unl].any()  # a subset of 10 rows
  assert set(lab[real]) == set(range(6))  # every labeled row still seen
  _, _, unl2, w2 = _epoch_rows(mask, 4, cap=10, seed=3)
  assert set(unl2[w2 > 0]) != set(unl[real])  # a fresh subset every epoch
  # a cap below n_L: T = n_L
  plan, lab, unl, w = _epoch_rows(mask, 4, cap=2, seed=2)
  assert w.sum() == 6 and set(lab[w > 0]) == set(range(6)) and len(set(unl[w > 0])) == 2


def test_variants_and_validation():
  assert waal.VARIANTS["authors"] == {"alpha": 2e-3, "gamma": None}
  assert waal.VARIANTS["deepalplus"] == {"alpha": 1e-3, "gamma": 1.0}
  with pytest.raises(ValueError):
    waal.waal_strategy(variant="nope")
  with pytest.raises(ValueError):
    waal.waal_strategy(gp_sign=2)
  with pytest.raises(ValueError):
    waal.waal_strategy(unlabeled_per_epoch=0)
  ctx = jal.Context(None, None, None, None, jnp.zeros(4, bool), 3)
  with pytest.raises(ValueError, match="own fit"):
    waal.waal_strategy().score(jax.random.key(0), ctx)
