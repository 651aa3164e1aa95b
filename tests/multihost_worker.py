"""One process of a real multi-process CPU JAX run; prints one ``JSON`` line.

``tests/test_multihost.py`` starts ``NUM_PROCS`` of these on one machine (coordinator on
``localhost:PORT``, ``LOCAL_DEVICES`` CPU devices each, cross-process collectives over gloo)
and compares their reports with :func:`compute` run in the test process itself (one
process, one device, ``mesh=None``). Each process holds only its rows of the pool
(``jal.parallel.process_pool``). Shapes are tiny.

  python tests/multihost_worker.py PROC_ID NUM_PROCS PORT LOCAL_DEVICES WORKDIR
"""

import json
import pathlib
import sys

import numpy as np

N = 202  # pool rows: not a multiple of 4 global devices, so the pool is padded to 204
N_LAB = 30
BUDGET = 10


def _tiny_data():
  import jal
  d = jal.data.load("digits", seed=0)
  return d._replace(x_train=d.x_train[:N], y_train=d.y_train[:N], x_test=d.x_test[:100],
                    y_test=d.y_test[:100], name="digits202")


def compute(mesh, workdir: str) -> dict:
  """Scoring, selection, ``fit`` and two ``run_loop`` rounds; with a multi-process ``mesh``
  every pool array is assembled from this process's rows only."""
  import jax
  import jax.numpy as jnp
  from jax.experimental import multihost_utils

  import jal
  from jal import cluster, parallel

  def host(a, n=N):  # the global array, whole, on this host (test-side comparison only)
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
      a = multihost_utils.process_allgather(a, tiled=True)
    return np.asarray(a)[:n]

  data = _tiny_data()
  multi = parallel.is_multiprocess_mesh(mesh)
  out = {"process_index": jax.process_index(), "process_count": jax.process_count(),
         "devices": jax.device_count(), "local_devices": jax.local_device_count()}
  if multi:
    x, y = parallel.process_pool((data.x_train, data.y_train), mesh)
    out["rows"] = list(parallel.process_rows(N, mesh))
    out["x_global_shape"] = list(x.shape)
    out["x_local_rows"] = sum(s.data.shape[0] for s in x.addressable_shards)
    out["x_spec"] = str(x.sharding.spec)
  else:
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  labeled = np.zeros(N, bool)
  labeled[np.random.default_rng(0).choice(N, N_LAB, replace=False)] = True
  net = jal.make_net("mlp", data.x_train.shape[1:], 10, hidden=(32,))
  cfg = jal.TrainConfig(epochs=3, batch_size=16)
  key = jax.random.key(0)

  # 1. Scoring with the same variables (trained locally, without a mesh, on each process).
  v = jal.fit(key, net, cfg, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
              jnp.asarray(labeled)).variables
  logits, emb = jal.predict(net, v, x, 16, mesh=mesh)
  el2n = jal.scores.el2n(net, v, x, y, 16, mesh=mesh)
  out["logits"] = host(logits).tolist()
  out["emb_sum"] = host(emb).sum(axis=1).tolist()
  out["el2n"] = host(el2n).tolist()

  # 2. Selection: sharded top-k of the margin score, and the margin / random strategies.
  with parallel.use_mesh(mesh):
    margin = jax.jit(lambda l: parallel.constrain_rows(
        jal.scores.margin_score(jax.nn.softmax(l, -1))))(logits)
  top = cluster.top_k_unlabeled(margin, jnp.asarray(labeled), BUDGET, mesh=mesh)
  out["topk_margin"] = np.asarray(top).tolist()
  ctx = jal.Context(net, v, x, y, jnp.asarray(labeled), 10, 16, mesh)
  for name in ("random", "margin"):
    out[f"select_{name}"] = np.asarray(
        jal.select(jal.get_strategy(name), jax.random.key(1), ctx, BUDGET)).tolist()

  # 3. fit under the mesh (padded pool rows are never labeled).
  mask = np.pad(labeled, (0, x.shape[0] - N))
  r = jal.fit(key, net, cfg, x, y, jnp.asarray(mask), mesh=mesh)
  out["fit_params"] = [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(r.variables.params)]
  out["fit_replicated"] = all(a.sharding.is_fully_replicated
                              for a in jax.tree.leaves(r.variables.params))

  # 4. Whole AL loops, every process with its own workdir (only process 0 may write).
  wd = pathlib.Path(workdir) / f"p{jax.process_index()}"
  for name in ("random", "margin"):
    h = jal.run_loop(jax.random.key(3), data, net, cfg, jal.get_strategy(name),
                     jal.LoopConfig(init_size=20, budget=BUDGET, rounds=2, chunk_size=16),
                     workdir=str(wd / name), verbose=False, mesh=mesh)
    out[f"loop_{name}_queried"] = [rr["queried"] for rr in h.rounds]
    out[f"loop_{name}_acc"] = h.accuracies
  out["files"] = sorted(str(p.relative_to(workdir)) for p in pathlib.Path(workdir).rglob("*")
                        if p.is_file() and p.is_relative_to(wd))
  return out


def main():
  proc, nproc, port, local = (int(a) for a in sys.argv[1:5])
  workdir = sys.argv[5]
  import jax
  jax.config.update("jax_num_cpu_devices", local)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=nproc,
                             process_id=proc, initialization_timeout=120)
  from jal import parallel
  out = compute(parallel.make_mesh(), workdir)
  print("JSON" + json.dumps(out), flush=True)
  jax.distributed.shutdown()


if __name__ == "__main__":
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  main()
