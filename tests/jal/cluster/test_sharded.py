"""``mesh=`` of every jal.cluster function: 8 fake CPU devices (subprocess) vs ``mesh=None``.

The pytest process has already initialised a 1-device CPU backend, so the 8-device checks run
once in ``sharded_worker.py`` (``jax_num_cpu_devices=8``) and are asserted here; a 1-device
mesh (padding, placement, ``use_mesh``) is checked in-process.

The 8-device worker (~150 s of CI, mostly compiles) runs in the slow suite; the default suite
keeps the 8-device round-level checks of ``tests/test_sharding.py`` (Random, Margin, Entropy,
CoreSet, BADGE and k-means rounds through ``jal.cluster`` on a mesh equal single-device ones)
and the 1-device mesh checks here.
"""

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jal import cluster, parallel
from tests.child_env import child_env

_WORKER = pathlib.Path(__file__).with_name("sharded_worker.py")


@pytest.fixture(scope="module")
def eight():  # only slow tests use it
  """The JSON report of ``sharded_worker.py`` on 8 fake CPU devices."""
  proc = subprocess.run([sys.executable, str(_WORKER), "8"], capture_output=True, text=True,
                        env=child_env(), timeout=900)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("JSON")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][4:])


@pytest.mark.slow
def test_worker_saw_eight_devices(eight):
  assert eight["devices"] == 8


@pytest.mark.parametrize("tag", ["", "_odd"])
@pytest.mark.parametrize("name", ["topk", "uniform", "kcenter", "kcenter_nolab", "kcenter_key",
                                  "kcenter_cand", "kpp", "kpp_nomask", "kpp_factored",
                                  "nearest"])
@pytest.mark.slow
def test_sharded_picks_equal_single_device(eight, name, tag):
  # Same random draws, same ties (lowest global index), also when n is padded to 8 shards.
  assert eight[f"{name}_same{tag}"]


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["", "_odd"])
@pytest.mark.parametrize("n_init", [1, 3])
def test_sharded_kmeans_equals_single_device(eight, n_init, tag):
  assert eight[f"kmeans{n_init}_same_assignment{tag}"]
  assert eight[f"kmeans{n_init}_inertia_rel{tag}"] < 1e-5
  assert eight[f"kmeans{n_init}_centroid_rel{tag}"] < 1e-4
  # The assignment stays split along data; padding rows are unassigned.
  assert eight[f"kmeans{n_init}_specs{tag}"] == ["P('data',)", "P()"]
  assert set(eight[f"kmeans{n_init}_pad_assignment{tag}"]) <= {-1}


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["", "_odd"])
def test_sharded_grouped_kmeans_equals_single_device(eight, tag):
  assert eight[f"grouped_same_assignment{tag}"]
  assert eight[f"grouped_inertia_rel{tag}"] < 1e-4
  assert eight[f"grouped_spec{tag}"] == "P('data',)"


@pytest.mark.slow
def test_sharded_uniform_scores_padded_and_gather_rows(eight):
  assert eight["uniform_shape"] == [256] and eight["uniform_shape_odd"] == [208]
  assert eight["gather_rows_same"]


@pytest.mark.slow
def test_selection_never_gathers_the_pool(eight):
  n = eight["n"]
  gathers = eight["max_all_gather"]
  # top-k gathers only devices·k candidates; the others only per-device argmax partials.
  assert gathers["top_k"] == 8 * 20
  for name in ("kcenter", "kmeans_pp", "kmeans_pp_factored", "kmeans"):
    assert gathers[name] < n // 8, (name, gathers[name])


# ------------------------------------------------------------------ in-process, 1 device


def _pool(n=13, d=3, seed=1):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(n, d)).astype(np.float32))
  lab = np.arange(n) % 4 == 0
  return x, lab, jnp.asarray(rng.normal(size=n).astype(np.float32))


@pytest.mark.slow  # ~30 s on 2 cores (CI time); the 8-device checks cover the mesh path
def test_one_device_mesh_equals_none():
  mesh, key = parallel.make_mesh(), jax.random.key(3)
  x, lab, s = _pool()
  m = dict(mesh=mesh)
  np.testing.assert_array_equal(cluster.top_k_unlabeled(s, lab, 5, **m),
                                cluster.top_k_unlabeled(s, lab, 5))
  np.testing.assert_array_equal(cluster.kcenter_greedy(x, 4, lab, **m),
                                cluster.kcenter_greedy(x, 4, lab))
  np.testing.assert_array_equal(cluster.kmeans_plusplus(key, x, 4, ~lab, **m),
                                cluster.kmeans_plusplus(key, x, 4, ~lab))
  np.testing.assert_array_equal(cluster.kmeans_plusplus_factored(key, x, x, 4, ~lab, **m),
                                cluster.kmeans_plusplus_factored(key, x, x, 4, ~lab))
  np.testing.assert_array_equal(cluster.kmeans(key, x, 3, ~lab, **m).assignment,
                                cluster.kmeans(key, x, 3, ~lab).assignment)
  np.testing.assert_array_equal(cluster.nearest_to_centroids(key, x, 3, ~lab, **m),
                                cluster.nearest_to_centroids(key, x, 3, ~lab))
  g = jnp.asarray(np.arange(13) % 3 - 1)
  np.testing.assert_array_equal(cluster.grouped_kmeans(key, x, g, 2, 2, **m).assignment,
                                cluster.grouped_kmeans(key, x, g, 2, 2).assignment)
  np.testing.assert_array_equal(cluster.uniform_scores(key, 13, **m),
                                cluster.uniform_scores(key, 13))


def test_mesh_rejects_what_it_cannot_shard():
  mesh, key = parallel.make_mesh(), jax.random.key(0)
  x, lab, _ = _pool()
  with pytest.raises(ValueError, match="dist_fn"):
    cluster.kmeans_plusplus(key, x, 3, dist_fn=cluster.euclidean_sq_dist(x), mesh=mesh)
  with pytest.raises(ValueError, match="concrete"):
    jax.jit(lambda m: cluster.kcenter_greedy(x, 3, m, mesh=mesh))(jnp.asarray(lab))
