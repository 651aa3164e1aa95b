"""Scale-out: mesh helpers in-process (1 device) and the 8-fake-device checks in a subprocess.

The pytest process has already initialised a 1-device CPU backend, so the 8-device checks
run once in ``tests/sharding_worker.py`` (``jax_num_cpu_devices=8``) and are asserted here.
Multi-host helpers are tested here as far as one process allows (``process_count() == 1``);
real multi-process runs are in ``tests/test_multihost.py``.
"""

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal import parallel
from jal.parallel.chunking import chunked_map
from tests.child_env import child_env

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _worker(*sections: str) -> dict:
  """The JSON report of ``sharding_worker.py`` on 8 fake CPU devices."""
  # -P: the script's folder (tests/, which holds the test package tests/jal) is not put first
  # on sys.path, so ``import jal`` finds the library.
  proc = subprocess.run([sys.executable, "-P", str(_REPO / "tests" / "sharding_worker.py"), "8",
                         *([",".join(sections)] if sections else [])],
                        capture_output=True, text=True, env=child_env(), timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("JSON")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][4:])


@pytest.fixture(scope="module")
def eight():
  return _worker()


def test_worker_saw_eight_devices(eight):
  assert eight["devices"] == 8


def test_sharded_scoring_equals_single_device(eight):
  assert eight["predict_max_rel"] <= 1e-5
  assert eight["el2n_max_rel"] <= 1e-5
  assert eight["predict_uneven_max_rel"] <= 1e-5


def test_scoring_outputs_are_row_sharded(eight):
  assert eight["predict_specs"] == ["P('data',)", "P('data',)"]
  assert eight["el2n_spec"] == "P('data',)"
  assert eight["predict_max_all_gather"] == 0


def test_bralt_pool_pass_honours_the_mesh(eight):
  assert eight["bralt_emb_spec"] == {"bral_t": "P('data',)"}
  assert eight["bralt_score_max_rel"]["bral_t"] <= 1e-5
  assert eight["bralt_score_max_rel"]["pseudo_score"] <= 1e-5


@pytest.mark.slow  # the RL agent trains twice on 8 fake devices (~2-3 min on 2 cores)
def test_bralt_picks_are_the_same_on_the_mesh():
  assert _worker("bralt_picks")["bralt_same"] == {"bral_t": True, "pseudo_score": True}


def test_sharded_fit_matches_and_replicates_params(eight):
  # Gradients are all-reduced in another order: equal up to float rounding over 3 epochs.
  assert eight["fit_max_rel"] < 1e-3
  assert eight["fit_many_max_rel"] < 1e-2
  assert eight["fit_params_replicated"]
  # A step gathers its minibatch rows from the sharded pool, never the pool itself.
  assert 0 < eight["fit_step_max_all_gather"] <= 16


def _same_round(report, name):
  single, sharded = report[f"picks_{name}"]
  assert len(single) == len(set(single)) > 0
  assert sharded == single
  if name != "random":  # and the mesh was used: the pool pass's outputs are split by rows
    assert report[f"score_row_sharded_{name}"] and all(report[f"score_row_sharded_{name}"])


@pytest.mark.parametrize("name", ["random", "margin", "badge"])
def test_sharded_round_selects_same_indices(eight, name):
  _same_round(eight, name)


@pytest.mark.slow  # the clustering strategies' round on 8 fake devices (~15 s)
def test_sharded_clustering_rounds_select_same_indices():
  report = _worker("round_clusters")
  for name in ("coreset", "kmeans"):
    _same_round(report, name)


# ------------------------------------------------------------------ in-process, 1 device


def test_make_mesh_and_placement():
  mesh = parallel.make_mesh()
  assert mesh.axis_names == ("data",) and mesh.shape["data"] == jax.device_count()
  with pytest.raises(ValueError):
    parallel.make_mesh(jax.device_count() + 1)
  x = parallel.shard_rows(np.arange(5.0), mesh)
  assert x.sharding.spec == jax.sharding.PartitionSpec("data")
  p = parallel.replicate({"w": jnp.ones(3)}, mesh)
  assert p["w"].sharding.is_fully_replicated


def test_pad_rows_and_padded_size():
  assert parallel.padded_size(10, 8) == 16 and parallel.padded_size(16, 8) == 16
  x = np.arange(6.0).reshape(3, 2)
  np.testing.assert_array_equal(parallel.pad_rows(x, 5)[3:], [[4.0, 5.0], [4.0, 5.0]])
  np.testing.assert_array_equal(parallel.pad_rows(x, 4, fill=-1.0)[3], [-1.0, -1.0])


def test_constraints_are_noops_without_mesh():
  @jax.jit
  def f(x):
    assert parallel.data_size() == 1
    return parallel.constrain_rows(x) + parallel.constrain_replicated(x)
  np.testing.assert_array_equal(f(jnp.arange(4.0)), 2 * jnp.arange(4.0))


def test_chunked_map_under_one_device_mesh_unchanged():
  x = jnp.arange(10.0)
  plain = jax.jit(lambda a: chunked_map(lambda c: c[0] * 3, (a,), 3))
  with parallel.use_mesh(parallel.make_mesh(1)):
    meshed = plain(x)
  np.testing.assert_array_equal(meshed, plain(x))


def test_fit_with_one_device_mesh_equals_fit():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(32, 4, 4, 1)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, 3, 32).astype(np.int32))
  mask = jnp.asarray(np.arange(32) < 12)
  net = jal.make_net("mlp", (4, 4, 1), 3, hidden=(8,))
  cfg = jal.TrainConfig(epochs=2, batch_size=4)
  a = jal.fit(jax.random.key(0), net, cfg, x, y, mask)
  b = jal.fit(jax.random.key(0), net, cfg, x, y, mask, mesh=parallel.make_mesh(1))
  for u, v in zip(jax.tree.leaves(a.variables), jax.tree.leaves(b.variables)):
    np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_process_rows_single_process():
  mesh = parallel.make_mesh()
  assert jax.process_count() == 1
  assert parallel.process_rows(10, mesh) == (0, parallel.padded_size(10, mesh.shape["data"]))
  start, stop = parallel.process_rows(10, mesh)
  local = parallel.pad_rows(np.arange(10.0), stop - start)
  g = parallel.shard_process_rows(local, 10, mesh)
  assert g.shape == (stop,) and g.sharding.spec == jax.sharding.PartitionSpec("data")
  np.testing.assert_array_equal(np.asarray(g)[:10], np.arange(10.0))


def test_distributed_flag_off_does_not_initialize(monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append(1))
  monkeypatch.delenv("JAL_DISTRIBUTED", raising=False)
  assert not parallel.maybe_initialize_distributed()
  monkeypatch.setenv("JAL_DISTRIBUTED", "1")
  assert parallel.maybe_initialize_distributed()
  assert not parallel.maybe_initialize_distributed(False)
  assert calls == [1]


def test_distributed_env_process_count_and_id(monkeypatch):
  # jax 0.10 reads JAX_COORDINATOR_ADDRESS itself but not these two: they are passed on.
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append(k))
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  monkeypatch.setenv("JAX_PROCESS_ID", "1")
  assert parallel.maybe_initialize_distributed(True)
  assert calls == [{"num_processes": 2, "process_id": 1}]


def test_process_pool_single_process_equals_shard_rows():
  mesh = parallel.make_mesh()
  x = np.arange(26.0).reshape(13, 2)
  (g,) = parallel.process_pool((x,), mesh)
  np.testing.assert_array_equal(g, parallel.shard_rows(x, mesh))
  assert not parallel.is_multiprocess_mesh(mesh) and not parallel.is_multiprocess_mesh(None)


def test_only_main_process_writes(tmp_path, monkeypatch):
  from jal.data.dataset import Dataset
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 4, 4, 1)).astype(np.float32)
  y = rng.integers(0, 3, 40).astype(np.int32)
  data = Dataset(x, y, x[:0], y[:0], x[:8], y[:8], 3, "toy")
  net = jal.make_net("mlp", (4, 4, 1), 3, hidden=(8,))
  args = (jax.random.key(0), data, net, jal.TrainConfig(epochs=1, batch_size=8),
          jal.get_strategy("random"), jal.LoopConfig(8, 4, 1))
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  jal.run_loop(*args, workdir=str(tmp_path / "p1"), verbose=False)
  assert not (tmp_path / "p1").exists()
  monkeypatch.setattr(jax, "process_index", lambda: 0)
  jal.run_loop(*args, workdir=str(tmp_path / "p0"), verbose=False)
  assert (tmp_path / "p0" / "history.json").exists()
