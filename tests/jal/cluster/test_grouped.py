"""grouped_kmeans: every group clustered on its own, all groups in one Lloyd run."""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.cluster import KMeans

from jal.cluster import grouped_kmeans


def _blobs(rng, groups, k, d):
  xs, gs = [], []
  for g in range(groups):
    centres = rng.normal(size=(k, d)) * 6
    m = int(rng.integers(20, 60))
    xs.append(centres[rng.integers(0, k, m)] + rng.normal(size=(m, d)) * 0.5)
    gs.append(np.full(m, g))
  x, g = np.concatenate(xs).astype(np.float32), np.concatenate(gs)
  perm = rng.permutation(g.size)
  return x[perm], g[perm]


def test_matches_sklearn_per_group_and_ignores_excluded_rows():
  rng = np.random.default_rng(0)
  groups, k, d = 4, 3, 5
  x, g = _blobs(rng, groups, k, d)
  g[:3] = -1  # rows outside every group
  r = grouped_kmeans(jax.random.key(0), jnp.asarray(x), jnp.asarray(g), groups, k)
  a = np.asarray(r.assignment)
  np.testing.assert_array_equal(a[g < 0], -1)
  assert bool(np.all(np.asarray(r.centre_ok)))
  for gg in range(groups):
    m = g == gg
    ref = KMeans(k, n_init=10, random_state=0).fit(x[m]).inertia_
    got = float(r.inertia[gg])
    # Same optimum as scikit-learn's best of 10 restarts (well-separated blobs).
    np.testing.assert_allclose(got, ref, rtol=1e-3)
    # Inertia is consistent with the returned centroids and assignment.
    c = np.asarray(r.centroids[gg])[a[m]]
    np.testing.assert_allclose(((x[m] - c) ** 2).sum(), got, rtol=1e-3)
    assert set(np.unique(a[m])) <= set(range(k))


def test_small_groups_get_fewer_centres():
  x = jnp.asarray(np.arange(12, dtype=np.float32)[:, None] ** 2)
  g = jnp.asarray([0] * 8 + [1] * 2 + [2] * 2)  # groups 1 and 2 have 2 < k = 3 members
  r = grouped_kmeans(jax.random.key(1), x, g, 4, 3)  # group 3 is empty
  ok = np.asarray(r.centre_ok)
  np.testing.assert_array_equal(ok.sum(axis=1), [3, 2, 2, 0])
  a = np.asarray(r.assignment)
  # Each member of a 2-row group sits on its own centre (inertia 0).
  assert a[8] != a[9] and a[10] != a[11]
  np.testing.assert_allclose(np.asarray(r.inertia[1:]), 0.0, atol=1e-4)
  assert np.isfinite(np.asarray(r.centroids)).all()
