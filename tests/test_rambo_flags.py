"""RAMBO flags: latent Sinkhorn distance of Eq. 4 (R5), noise/imbalance settings (R8).

The config plumbing of these flags is tested in tests/experiments/test_configs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ott.geometry import pointcloud
from ott.solvers import linear

import jal
from jal.rambo import samples, settings


def _embeddings(n=12, e=5, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n, e)), jnp.float32)


def _mask(idx, n=12):
  m = np.zeros(n, bool)
  m[list(idx)] = True
  return m


def test_latent_divergence_self_zero_and_disjoint_larger():
  h = _embeddings()
  a, b, c = _mask(range(4)), _mask(range(8, 12)), _mask(range(2, 6))  # c overlaps a by half
  d = samples.latent_divergence(h, np.stack([a, b, c]), np.stack([a, b]))
  assert d.shape == (3, 2)
  np.testing.assert_allclose(np.diag(np.asarray(d[:2])), 0.0, atol=1e-6)
  assert float(d[0, 1]) > 0.1 and float(d[1, 0]) > 0.1
  np.testing.assert_allclose(d[0, 1], d[1, 0], rtol=1e-4)  # symmetric
  assert 0.0 < float(d[2, 0]) < float(d[2, 1])  # c is closer to a than to b


@jax.jit
def _unpadded_divergence(x, y, eps):
  """Debiased entropic OT between the point clouds ``x [a, e]`` and ``y [b, e]`` (no padding)."""
  def reg_ot(p, q):
    return linear.solve(pointcloud.PointCloud(p, q, epsilon=eps), threshold=1e-5).reg_ot_cost
  with jax.numpy_rank_promotion("allow"):
    return reg_ot(x, y) - 0.5 * reg_ot(x, x) - 0.5 * reg_ot(y, y)


def test_latent_divergence_equals_unpadded_ott():
  h = _embeddings()
  hn = np.asarray(h, np.float64)
  eps = 0.2 * np.mean(np.sum((hn[:, None] - hn[None]) ** 2, -1))  # ε from all pool pairs
  sets = [[0, 3, 5], [1, 2, 4, 6, 7, 9, 11], [5, 6, 7, 8, 10]]
  masks = np.stack([_mask(s) for s in sets])
  d = samples.latent_divergence(h, masks[:2], masks[1:], rel_eps=0.2)
  for j, r in ((0, 0), (0, 1), (1, 1)):
    want = _unpadded_divergence(h[np.array(sets[j])], h[np.array(sets[r + 1])], eps)
    np.testing.assert_allclose(d[j, r], want, rtol=1e-4)
  assert float(d[1, 0]) == 0.0  # the same set
  # An explicit ε is the same as the relative one it equals.
  d_eps = samples.latent_divergence(h, masks[:2], masks[1:], epsilon=eps)
  np.testing.assert_allclose(d_eps, d, rtol=1e-5)


def test_sinkhorn_interpolation_hits_the_endpoints():
  h = _embeddings()
  s_i, s_next = _mask(range(6)), _mask(range(9))
  xi = np.stack([s_i, s_next, _mask([0, 1, 6, 7, 8])])
  d = samples.latent_divergence(h, xi, np.stack([s_i, s_next]))
  u = samples.interpolate_from_distances(d[:, 0], d[:, 1], 0.6, 0.8)
  np.testing.assert_allclose(u[:2], [0.6, 0.8], atol=1e-6)
  assert 0.6 < float(u[2]) < 0.8


def test_interpolate_from_distances_by_hand_and_euclidean_unchanged():
  u = samples.interpolate_from_distances(jnp.array([1.0, 0.0, 0.0]), jnp.array([3.0, 2.0, 0.0]),
                                         0.5, 0.9)
  # α = 3/4, 1, and ½ where both distances vanish.
  np.testing.assert_allclose(u, [0.75 * 0.5 + 0.25 * 0.9, 0.5, 0.7], rtol=1e-6)
  phi = jnp.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
  u = samples.interpolate_utility(phi, jnp.zeros(2), jnp.array([6.0, 8.0]), 0.6, 0.8)
  np.testing.assert_allclose(u, [0.6, 0.7, 0.8], rtol=1e-5)


def _toy_data(per_class=20, k=10):
  """Pool of ``k · per_class`` points whose single pixel is the row index; clean val/test."""
  n = per_class * k
  x = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1)
  y = np.repeat(np.arange(k), per_class)
  return jal.data.make_dataset(x, y, x[:30] + 0.5, y[:30], x[:40] - 0.5, y[:40][::-1].copy(),
                               num_classes=k, name="toy")


def _same_eval_splits(a, b):
  for name in ("x_val", "y_val", "x_test", "y_test"):
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_noisy_pool_flips_exact_count_to_other_classes():
  data = _toy_data()
  noisy = settings.noisy_pool(jax.random.key(0), data, rate=0.2)
  np.testing.assert_array_equal(noisy.x_train, data.x_train)
  _same_eval_splits(noisy, data)
  # Exactly round(0.2 · 200) = 40 rows are drawn and all 40 differ: none was "flipped" to itself.
  assert int(np.sum(noisy.y_train != data.y_train)) == 40
  assert noisy.y_train.min() >= 0 and noisy.y_train.max() < 10
  again = settings.noisy_pool(jax.random.key(0), data, rate=0.2)
  np.testing.assert_array_equal(again.y_train, noisy.y_train)
  other = settings.noisy_pool(jax.random.key(1), data, rate=0.2)
  assert not np.array_equal(other.y_train, noisy.y_train)
  np.testing.assert_array_equal(settings.noisy_pool(jax.random.key(0), data, 0.0).y_train,
                                data.y_train)


@pytest.mark.parametrize("keep_only,left", [(False, 16), (True, 4)])
def test_imbalanced_pool_thins_three_classes(keep_only, left):
  data = _toy_data()
  imb = settings.imbalanced_pool(jax.random.key(0), data, class_frac=0.3, remove=0.2,
                                 keep_only=keep_only)
  counts = np.bincount(imb.y_train, minlength=10)
  # 30% of 10 classes lose 20% of their 20 instances (or keep only 20%): 16 (or 4) are left.
  assert sorted(counts.tolist()) == [left] * 3 + [20] * 7
  rows = imb.x_train[:, 0, 0, 0].astype(int)  # the original pool index of each kept row
  assert np.all(np.diff(rows) > 0)
  np.testing.assert_array_equal(imb.y_train, data.y_train[rows])
  _same_eval_splits(imb, data)
  again = settings.imbalanced_pool(jax.random.key(0), data, keep_only=keep_only)
  np.testing.assert_array_equal(again.x_train, imb.x_train)
  picks = {tuple(np.flatnonzero(np.bincount(settings.imbalanced_pool(
      jax.random.key(s), data, keep_only=keep_only).y_train, minlength=10) < 20))
      for s in range(5)}
  assert len(picks) > 1  # the thinned classes are drawn at random
