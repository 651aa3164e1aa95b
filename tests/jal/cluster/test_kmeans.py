"""jal.cluster.kmeans: k-means++ (plain, factored), Lloyd k-means, nearest_to_centroids."""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from jal import cluster
from tests.jal.cluster.refs import factors as _factors
from tests.jal.cluster.refs import np_sq_dists as _np_sq_dists


def _blobs(n=400, centers=5, d=8, seed=0, std=1.0):
  x, _ = make_blobs(n_samples=n, centers=centers, n_features=d, cluster_std=std, random_state=seed)
  return x.astype(np.float32)


def _check_kmeans_result(x, res, mask=None):
  x = np.asarray(x, np.float64)
  c = np.asarray(res.centroids, np.float64)
  a = np.asarray(res.assignment)
  valid = np.ones(len(x), bool) if mask is None else np.asarray(mask)
  assert np.all(a[~valid] == -1)
  assert np.all((a[valid] >= 0) & (a[valid] < len(c)))
  d = _np_sq_dists(x[valid], c)
  own = d[np.arange(valid.sum()), a[valid]]
  np.testing.assert_allclose(own.sum(), float(res.inertia), rtol=1e-5, atol=1e-6)
  # Every valid row sits at (one of) its nearest centroids.
  assert np.all(own <= d.min(1) + 1e-4 * (1.0 + d.min(1)))


def test_kmeans_matches_sklearn():
  x = _blobs()
  sk = KMeans(n_clusters=5, n_init=10, random_state=0).fit(x)
  res = cluster.kmeans(jax.random.key(0), jnp.asarray(x), 5, n_init=10)
  assert res.centroids.shape == (5, 8) and res.assignment.dtype == jnp.int32
  assert float(res.inertia) <= sk.inertia_ * (1 + 1e-3)
  assert 1 <= int(res.n_iter) <= 100
  _check_kmeans_result(x, res)


def test_kmeans_single_init_consistent_and_deterministic():
  x = jnp.asarray(_blobs(n=300, centers=4, seed=1, std=3.0))
  r1 = cluster.kmeans(jax.random.key(3), x, 6)
  r2 = cluster.kmeans(jax.random.key(3), x, 6)
  _check_kmeans_result(x, r1)
  for u, v in zip(r1, r2):
    np.testing.assert_array_equal(u, v)


def test_kmeans_empty_clusters_keep_centroid():
  # 3 distinct points, k=5: duplicated seeds leave clusters empty; they must keep
  # their (data-point) centroid instead of collapsing to 0 / NaN.
  pts = np.array([[5.0, 1.0], [7.0, 2.0], [9.0, 8.0]], np.float32)
  x = jnp.asarray(np.repeat(pts, [50, 30, 20], axis=0))
  res = cluster.kmeans(jax.random.key(0), x, 5, n_init=2)
  c = np.asarray(res.centroids)
  assert np.all(np.isfinite(c))
  assert np.all(np.min(_np_sq_dists(c, pts), axis=1) < 1e-8)
  assert float(res.inertia) < 1e-6
  _check_kmeans_result(x, res)


def test_kmeans_masked_rows_ignored():
  x = _blobs(n=300, centers=4, seed=2, std=0.5)
  rng = np.random.default_rng(0)
  mask = rng.random(300) < 0.7
  key = jax.random.key(1)
  res = cluster.kmeans(key, jnp.asarray(x), 4, jnp.asarray(mask), n_init=3)
  _check_kmeans_result(x, res, mask)
  # Garbage in masked rows changes nothing.
  x_bad = x.copy()
  x_bad[~mask] = 1e3
  res_bad = cluster.kmeans(key, jnp.asarray(x_bad), 4, jnp.asarray(mask), n_init=3)
  np.testing.assert_allclose(res_bad.centroids, res.centroids, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(res_bad.assignment, res.assignment)
  # Same partition as clustering the subset alone (well-separated blobs).
  sub = cluster.kmeans(key, jnp.asarray(x[mask]), 4, n_init=3)

  def order(c):
    c = np.asarray(c)
    return c[np.lexsort(c.T)]

  np.testing.assert_allclose(order(sub.centroids), order(res.centroids), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(float(sub.inertia), float(res.inertia), rtol=1e-4)


def test_kmeans_plusplus_unique_valid_and_masked():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(300, 5)).astype(np.float32))
  mask = rng.random(300) < 0.3
  for s in range(5):
    idx = np.asarray(cluster.kmeans_plusplus(jax.random.key(s), x, 40, jnp.asarray(mask)))
    assert idx.shape == (40,) and idx.dtype == np.int32
    assert len(set(idx.tolist())) == 40
    assert np.all(mask[idx])
  a = cluster.kmeans_plusplus(jax.random.key(7), x, 40, jnp.asarray(mask))
  b = cluster.kmeans_plusplus(jax.random.key(7), x, 40, jnp.asarray(mask))
  np.testing.assert_array_equal(a, b)


def test_kmeans_plusplus_duplicates_and_exhaustive():
  x = jnp.ones((300, 5), jnp.float32)
  idx = np.asarray(cluster.kmeans_plusplus(jax.random.key(0), x, 40))
  assert len(set(idx.tolist())) == 40
  # k == number of valid rows: must return exactly the valid rows.
  mask = np.zeros(300, bool)
  mask[::30] = True
  idx = np.asarray(cluster.kmeans_plusplus(jax.random.key(1), x, 10, jnp.asarray(mask)))
  np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(mask))


def test_kmeans_plusplus_spreads_over_blobs():
  x, y = make_blobs(n_samples=300, centers=5, n_features=5, cluster_std=0.1, random_state=3)
  x = jnp.asarray(x, jnp.float32)
  hits = [
    len(set(y[np.asarray(cluster.kmeans_plusplus(jax.random.key(s), x, 5))])) for s in range(20)
  ]
  assert sum(h == 5 for h in hits) >= 18


def test_kmeans_plusplus_d2_distribution():
  # Empirical (first, second) pair frequencies match (1/n_valid) * D²(j | i) / Σ D².
  x = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [9.0, 9.0], [3.0, 1.0], [0.5, 0.5]])
  mask = jnp.asarray([True, True, True, False, True, True])
  keys = jax.random.split(jax.random.key(0), 20000)
  pairs = np.asarray(jax.vmap(lambda kk: cluster.kmeans_plusplus(kk, x, 2, mask))(keys))
  valid = np.flatnonzero(np.asarray(mask))
  d = _np_sq_dists(x, x)
  for i in valid:
    probs = d[i, valid] / d[i, valid].sum() / len(valid)
    freq = np.array([np.mean((pairs[:, 0] == i) & (pairs[:, 1] == j)) for j in valid])
    np.testing.assert_allclose(freq, probs, atol=0.012)


def test_factored_seeding_matches_explicit():
  a, e, g = _factors(seed=1)
  mask = jnp.asarray(np.random.default_rng(1).random(300) < 0.8)
  for s in range(3):
    key = jax.random.key(s)
    f = cluster.kmeans_plusplus_factored(key, a, e, 20, mask)
    x = cluster.kmeans_plusplus(key, g, 20, mask)
    p = cluster.kmeans_plusplus(key, g, 20, mask, dist_fn=cluster.factored_sq_dist(a, e))
    np.testing.assert_array_equal(f, x)
    np.testing.assert_array_equal(f, p)
    assert np.all(np.asarray(mask)[np.asarray(f)])


def test_nearest_to_centroids_is_the_nearest_member():
  x = _blobs(n=300, centers=4, seed=4, std=0.5)
  mask = np.random.default_rng(2).random(300) < 0.8
  key = jax.random.key(5)
  got = np.asarray(cluster.nearest_to_centroids(key, jnp.asarray(x), 4, jnp.asarray(mask), 20))
  res = cluster.kmeans(key, jnp.asarray(x), 4, jnp.asarray(mask), n_iter=20)
  a, c = np.asarray(res.assignment), np.asarray(res.centroids, np.float64)
  d = _np_sq_dists(x, c)
  for j in range(4):
    members = np.flatnonzero(a == j)
    assert got[j] == members[np.argmin(d[members, j])]
  assert np.all(mask[got]) and len(set(got.tolist())) == 4  # one row per blob
