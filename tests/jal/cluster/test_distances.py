"""jal.cluster.distances: pairwise, nearest-centroid and dist_to(j) against NumPy."""

import jax.numpy as jnp
import numpy as np

from jal import cluster
from tests.jal.cluster.refs import factors as _factors
from tests.jal.cluster.refs import np_sq_dists as _np_sq_dists


def test_pairwise_and_nearest():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(30, 6)).astype(np.float32), rng.normal(size=(7, 6)).astype(np.float32)
  d = np.asarray(cluster.pairwise_sq_dists(x, y))
  assert d.shape == (30, 7) and np.all(d >= 0)
  np.testing.assert_allclose(d, _np_sq_dists(x, y), rtol=1e-4, atol=1e-5)
  assert np.all(np.asarray(cluster.pairwise_sq_dists(x, x)) >= 0)
  np.testing.assert_array_equal(cluster.nearest_centroid(x, y), _np_sq_dists(x, y).argmin(1))


def test_factored_sq_dist_matches_explicit():
  a, e, g = _factors()
  dist = cluster.factored_sq_dist(a, e)
  ref = _np_sq_dists(g, g)
  for j in (0, 17, 299):
    np.testing.assert_allclose(dist(jnp.int32(j)), ref[:, j], rtol=1e-5, atol=1e-4)
  expl = cluster.euclidean_sq_dist(g)
  np.testing.assert_allclose(dist(jnp.int32(5)), expl(jnp.int32(5)), rtol=1e-5, atol=1e-4)
