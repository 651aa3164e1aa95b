"""Runs every jal.cluster function with a fake-device mesh and with ``mesh=None``; one JSON line.

The pytest process keeps its 1-device CPU backend, so ``test_sharded.py`` starts this script
with ``jax_num_cpu_devices=8`` and asserts on its output. Shapes are tiny.

  python tests/jal/cluster/sharded_worker.py [num_devices]
"""

import importlib
import json
import sys

import jax

jax.config.update("jax_num_cpu_devices", int(sys.argv[1]) if len(sys.argv) > 1 else 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jal import cluster, parallel  # noqa: E402
from tests.mesh_checks import largest_all_gather as _largest_all_gather  # noqa: E402
from tests.mesh_checks import max_rel as _max_rel  # noqa: E402
from tests.mesh_checks import spec as _spec  # noqa: E402

# The modules (``jal.cluster.kmeans`` the attribute is the function of that name).
kcenter, kmeans, topk = (importlib.import_module(f"jal.cluster.{m}")
                         for m in ("kcenter", "kmeans", "topk"))

N = 256        # a multiple of 8
N_ODD = 203    # not a multiple of 8: padded inside
N_LAB = 40


def _same(a, b):
  return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _pool(n, seed):
  rng = np.random.default_rng(seed)
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, N_LAB, replace=False)] = True
  emb = jax.random.normal(jax.random.key(seed + 2), (n, 6))
  a = jax.random.normal(jax.random.key(seed + 3), (n, 4))
  sc = jnp.round(jax.random.normal(jax.random.key(seed + 4), (n,)), 1)  # many ties
  return labeled, jnp.asarray(labeled), emb, a, sc


def main():
  out = {"devices": jax.device_count(), "n": N}
  mesh = parallel.make_mesh()
  key = jax.random.key(0)
  for n, tag in ((N, ""), (N_ODD, "_odd")):
    labeled, lab, emb, a, sc = _pool(n, 0 if n == N else 5)
    m = dict(mesh=mesh)
    out["topk_same" + tag] = _same(cluster.top_k_unlabeled(sc, lab, 20, **m),
                                   cluster.top_k_unlabeled(sc, lab, 20))
    u8 = cluster.uniform_scores(key, n, **m)
    out["uniform_same" + tag] = _same(u8[:n], cluster.uniform_scores(key, n))
    out["uniform_shape" + tag] = list(u8.shape)
    out["kcenter_same" + tag] = _same(
        cluster.kcenter_greedy(emb, 15, labeled, chunk_size=8, **m),
        cluster.kcenter_greedy(emb, 15, lab, chunk_size=8))
    none = np.zeros(n, bool)
    out["kcenter_nolab_same" + tag] = _same(cluster.kcenter_greedy(emb, 15, none, **m),
                                            cluster.kcenter_greedy(emb, 15, none))
    out["kcenter_key_same" + tag] = _same(cluster.kcenter_greedy(emb, 15, none, key=key, **m),
                                          cluster.kcenter_greedy(emb, 15, none, key=key))
    cand = np.arange(n) % 3 > 0
    out["kcenter_cand_same" + tag] = _same(cluster.kcenter_greedy(emb, 15, labeled, cand, **m),
                                           cluster.kcenter_greedy(emb, 15, labeled, cand))
    out["kpp_same" + tag] = _same(cluster.kmeans_plusplus(key, emb, 10, ~lab, **m),
                                  cluster.kmeans_plusplus(key, emb, 10, ~lab))
    out["kpp_nomask_same" + tag] = _same(cluster.kmeans_plusplus(key, emb, 10, **m),
                                         cluster.kmeans_plusplus(key, emb, 10))
    out["kpp_factored_same" + tag] = _same(
        cluster.kmeans_plusplus_factored(key, a, emb, 10, ~lab, **m),
        cluster.kmeans_plusplus_factored(key, a, emb, 10, ~lab))
    out["nearest_same" + tag] = _same(cluster.nearest_to_centroids(key, emb, 5, ~lab, **m),
                                      cluster.nearest_to_centroids(key, emb, 5, ~lab))
    for n_init in (1, 3):
      k8 = cluster.kmeans(key, emb, 5, ~lab, n_iter=20, n_init=n_init, **m)
      k1 = cluster.kmeans(key, emb, 5, ~lab, n_iter=20, n_init=n_init)
      out[f"kmeans{n_init}_same_assignment" + tag] = _same(k8.assignment[:n], k1.assignment)
      out[f"kmeans{n_init}_pad_assignment" + tag] = np.asarray(k8.assignment[n:]).tolist()
      out[f"kmeans{n_init}_inertia_rel" + tag] = _max_rel(k8.inertia, k1.inertia)
      out[f"kmeans{n_init}_centroid_rel" + tag] = _max_rel(k8.centroids, k1.centroids)
      out[f"kmeans{n_init}_specs" + tag] = [_spec(k8.assignment), _spec(k8.centroids)]
    group = jnp.asarray(np.random.default_rng(1).integers(-1, 3, n).astype(np.int32))
    g8 = cluster.grouped_kmeans(key, emb, group, 3, 2, **m)
    g1 = cluster.grouped_kmeans(key, emb, group, 3, 2)
    out["grouped_same_assignment" + tag] = _same(g8.assignment[:n], g1.assignment)
    out["grouped_inertia_rel" + tag] = _max_rel(g8.inertia, g1.inertia)
    out["grouped_spec" + tag] = _spec(g8.assignment)
  rows = jnp.asarray([0, 33, 255, 128, 33], jnp.int32)
  x = jnp.arange(N * 3, dtype=jnp.float32).reshape(N, 3)
  with parallel.use_mesh(mesh):
    got = jax.jit(cluster.gather_rows)(parallel.shard_rows(x, mesh), rows)
  out["gather_rows_same"] = _same(got, x[rows])

  # No pool-sized all-gather in the compiled programs.
  labeled, lab, emb, a, sc = _pool(N, 0)
  xs, av = parallel.shard_rows(emb, mesh), parallel.shard_rows(~lab, mesh)
  sp, lp = parallel.shard_rows(sc, mesh), parallel.shard_rows(lab, mesh)
  out["max_all_gather"] = {
      "top_k": _largest_all_gather(topk._top_k_jit, mesh, sp, lp, budget=20),
      "kcenter": _largest_all_gather(
          kcenter._kcenter, mesh, xs, av, jnp.arange(64, dtype=jnp.int32),
          jnp.arange(64) < N_LAB, jnp.zeros((N,)), budget=15, chunk=8, centre=True),
      "kmeans_pp": _largest_all_gather(kmeans._kpp_euclidean, mesh, key, xs, k=10, mask=av,
                                       sq_norms=None),
      "kmeans_pp_factored": _largest_all_gather(
          kmeans._kpp_factored, mesh, key, parallel.shard_rows(a, mesh), xs, k=10, mask=av),
      "kmeans": _largest_all_gather(kmeans._kmeans, mesh, key, xs, k=5, mask=av, n_iter=20,
                                    n_init=1, tol=1e-6),
  }
  print("JSON" + json.dumps(out))


if __name__ == "__main__":
  main()
