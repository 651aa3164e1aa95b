"""jal.cluster.topk: top-k of the unlabeled rows, uniform scores, gather_rows (one device)."""

import jax
import jax.numpy as jnp
import numpy as np

from jal import cluster, strategies
from tests.jal.cluster.refs import np_top_k


def test_top_k_unlabeled_matches_numpy_with_ties():
  rng = np.random.default_rng(0)
  # Many ties (lowest index first); + 0.0 turns -0.0 into 0.0, which top_k orders apart.
  s = (np.round(rng.normal(size=500), 1) + 0.0).astype(np.float32)
  lab = rng.random(500) < 0.3
  for budget in (1, 17, 350):
    got = np.asarray(cluster.top_k_unlabeled(jnp.asarray(s), jnp.asarray(lab), budget))
    np.testing.assert_array_equal(got, np_top_k(s, lab, budget))
  jitted = jax.jit(lambda a, m: cluster.top_k_unlabeled(a, m, 17))
  np.testing.assert_array_equal(jitted(jnp.asarray(s), jnp.asarray(lab)), np_top_k(s, lab, 17))
  # jal.strategies re-exports the same function.
  assert strategies.top_k_unlabeled is cluster.top_k_unlabeled


def test_top_k_unlabeled_never_picks_labeled():
  s = jnp.arange(10.0)
  lab = jnp.asarray(np.arange(10) >= 4)  # the highest scores are all labeled
  np.testing.assert_array_equal(cluster.top_k_unlabeled(s, lab, 4), [3, 2, 1, 0])


def test_uniform_scores_and_gather_rows():
  key = jax.random.key(7)
  np.testing.assert_array_equal(cluster.uniform_scores(key, 11), jax.random.uniform(key, (11,)))
  x = np.arange(24.0, dtype=np.float32).reshape(8, 3)
  idx = jnp.asarray([5, 0, 5, 7], jnp.int32)
  np.testing.assert_array_equal(cluster.gather_rows(jnp.asarray(x), idx), x[[5, 0, 5, 7]])
  got = jax.jit(cluster.gather_rows)(jnp.asarray(x), idx)
  np.testing.assert_array_equal(got, x[[5, 0, 5, 7]])
