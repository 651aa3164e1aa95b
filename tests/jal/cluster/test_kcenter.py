"""jal.cluster.kcenter: greedy k-center (CoreSet) against a NumPy brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jal import cluster
from tests.jal.cluster.refs import np_kcenter as _np_kcenter


def test_kcenter_matches_bruteforce_and_chunking():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 8)).astype(np.float32)
  labeled = rng.random(200) < 0.1
  cand = rng.random(200) < 0.8
  ref = _np_kcenter(x, 25, labeled, cand)
  for chunk in (4, 7, 1024):
    got = np.asarray(cluster.kcenter_greedy(x, 25, labeled, cand, chunk_size=chunk))
    np.testing.assert_array_equal(got, ref)
  assert not np.any(labeled[ref]) and np.all(cand[ref])
  # Default candidates = all unlabeled; a jitted (traced-mask) call agrees.
  ref_all = _np_kcenter(x, 25, labeled, np.ones(200, bool))
  got = cluster.kcenter_greedy(x, 25, labeled)
  np.testing.assert_array_equal(got, ref_all)
  jitted = jax.jit(lambda xx, m: cluster.kcenter_greedy(xx, 25, m, chunk_size=16))
  np.testing.assert_array_equal(jitted(jnp.asarray(x), jnp.asarray(labeled)), ref_all)


def test_kcenter_no_labeled_and_exhaustive():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(200, 5)).astype(np.float32)
  none = np.zeros(200, bool)
  start = ((x - x.mean(0)) ** 2).sum(1)
  got = np.asarray(cluster.kcenter_greedy(x, 10, none))
  np.testing.assert_array_equal(got, _np_kcenter(x, 10, none, np.ones(200, bool), start))
  r1 = cluster.kcenter_greedy(x, 10, none, key=jax.random.key(4))
  r2 = cluster.kcenter_greedy(x, 10, none, key=jax.random.key(4))
  np.testing.assert_array_equal(r1, r2)
  assert len(set(np.asarray(r1).tolist())) == 10
  # Budget equal to the number of candidates returns each exactly once.
  labeled = np.arange(200) >= 12
  got = np.asarray(cluster.kcenter_greedy(x, 12, labeled))
  np.testing.assert_array_equal(np.sort(got), np.arange(12))


def test_kcenter_duplicates_stay_unique():
  x = np.zeros((50, 3), np.float32)
  labeled = np.zeros(50, bool)
  labeled[0] = True
  got = np.asarray(cluster.kcenter_greedy(x, 49, labeled))
  np.testing.assert_array_equal(np.sort(got), np.arange(1, 50))


def test_kcenter_errors():
  x = np.zeros((20, 3), np.float32)
  labeled = np.arange(20) < 15
  with pytest.raises(ValueError, match="budget"):
    cluster.kcenter_greedy(x, 6, labeled)
  cand = np.arange(20) < 17
  with pytest.raises(ValueError, match="budget"):
    cluster.kcenter_greedy(x, 3, labeled, cand)
  with pytest.raises(ValueError, match="shape"):
    cluster.kcenter_greedy(x, 1, labeled[:10])
  assert cluster.kcenter_greedy(x, 0, labeled).shape == (0,)
