"""Old-vs-new equivalence harness for the clustering merge (not part of the repo).

  PYTHONPATH=<checkout> python equiv_cluster.py DEVICES OUT.npz

Computes every clustering / top-k primitive and every built-in strategy pick on fixed
synthetic inputs, with ``mesh=None`` and (DEVICES > 1) with a ``data`` mesh, through whichever
API the checkout has (``jal.sharded_select`` + ``jal.cluster`` before, ``jal.cluster(mesh=)``
after), and saves all outputs; compare two files bit for bit.
"""

import sys

import jax

jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jal  # noqa: E402
from jal import cluster, sharding  # noqa: E402

OLD = hasattr(jal, "sharded_select")
if OLD:
  from jal import sharded_select as ss  # noqa: E402
  from jal.grouped_kmeans import grouped_kmeans  # noqa: E402
else:
  grouped_kmeans = cluster.grouped_kmeans
top_k = jal.strategies.top_k_unlabeled


def inputs(n, d, seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.5, 3.0, size=d).astype(
      np.float32)
  x[: n // 10] = x[n // 10: 2 * (n // 10)]  # duplicates
  lab = np.zeros(n, bool)
  lab[rng.choice(n, n // 8, replace=False)] = True
  logits = rng.normal(size=(n, 10)).astype(np.float32) * 3
  a = rng.normal(size=(n, 10)).astype(np.float32)
  scores = np.round(rng.normal(size=n), 1).astype(np.float32)  # ties
  group = rng.integers(-1, 4, n).astype(np.int32)
  mc = jax.nn.softmax(jnp.asarray(rng.normal(size=(5, n, 10)).astype(np.float32)), -1)
  return x, lab, logits, a, scores, group, mc


def main():
  out = {}
  devices = jax.device_count()
  mesh = sharding.make_mesh() if devices > 1 else None
  for n, d, seed in ((1797, 32, 0), (3001, 84, 1), (4096, 20, 2)):
    x, lab, logits, a, scores, group, mc = inputs(n, d, seed)
    X, L, A, S = jnp.asarray(x), jnp.asarray(lab), jnp.asarray(a), jnp.asarray(scores)
    tag = f"n{n}"
    for s in range(3):
      key = jax.random.key(s)
      for k in (7, 40):
        out[f"{tag}.kpp.{s}.{k}"] = cluster.kmeans_plusplus(key, X, k, ~L)
        out[f"{tag}.kppf.{s}.{k}"] = cluster.kmeans_plusplus_factored(key, A, X, k, ~L)
        for n_init in (1, 3):
          r = cluster.kmeans(key, X, k, ~L, n_iter=15, n_init=n_init)
          for f in r._fields:
            out[f"{tag}.km.{s}.{k}.{n_init}.{f}"] = getattr(r, f)
        out[f"{tag}.kc.{k}"] = cluster.kcenter_greedy(X, k, L, chunk_size=64)
        out[f"{tag}.kc_key.{s}.{k}"] = cluster.kcenter_greedy(X, k, np.zeros(n, bool),
                                                              key=key)
        out[f"{tag}.kc_none.{k}"] = cluster.kcenter_greedy(X, k, np.zeros(n, bool))
        out[f"{tag}.kc_cand.{k}"] = cluster.kcenter_greedy(X, k, L, np.arange(n) % 3 > 0)
        out[f"{tag}.kc_jit.{k}"] = jax.jit(
            lambda xx, m, k=k: cluster.kcenter_greedy(xx, k, m, chunk_size=16))(X, L)
        out[f"{tag}.topk.{k}"] = top_k(S, L, k)
      g = grouped_kmeans(key, X, jnp.asarray(group), 4, 3, n_iter=10)
      for f in g._fields:
        out[f"{tag}.grouped.{s}.{f}"] = getattr(g, f)
      ctx = jal.Context(None, None, None, None, L, 10, 64, None)
      for name, aux in (("random", None), ("margin", logits), ("entropy", logits),
                        ("least_confidence", logits), ("bald", mc), ("coreset", (logits, x)),
                        ("kmeans", (logits, x)), ("badge", (logits, x))):
        p = jal.get_strategy(name).pick(key, ctx, aux, 25)
        p = p[0] if isinstance(p, tuple) else p
        out[f"{tag}.pick.{name}.{s}"] = p
      if mesh is None:
        continue
      # ------------------------------------------------------------ with the mesh
      for k in (7, 40):
        if OLD:
          out[f"{tag}.M.kpp.{s}.{k}"] = ss.kmeans_plusplus(key, X, k, ~L, mesh)
          out[f"{tag}.M.kppf.{s}.{k}"] = ss.kmeans_plusplus_factored(key, A, X, k, ~L, mesh)
          r = ss.kmeans(key, X, k, ~L, mesh, n_iter=15)
          out[f"{tag}.M.kc.{k}"] = ss.kcenter_greedy(X, k, lab, mesh, chunk_size=64)
          out[f"{tag}.M.kc_key.{s}.{k}"] = ss.kcenter_greedy(X, k, np.zeros(n, bool), mesh,
                                                             key=key)
          out[f"{tag}.M.kc_none.{k}"] = ss.kcenter_greedy(X, k, np.zeros(n, bool), mesh)
          out[f"{tag}.M.topk.{k}"] = ss.top_k_unlabeled(S, L, k, mesh)
          out[f"{tag}.M.near.{s}.{k}"] = ss.nearest_to_centroids(key, X, k, ~L, mesh, 15)
        else:
          out[f"{tag}.M.kpp.{s}.{k}"] = cluster.kmeans_plusplus(key, X, k, ~L, mesh=mesh)
          out[f"{tag}.M.kppf.{s}.{k}"] = cluster.kmeans_plusplus_factored(key, A, X, k, ~L,
                                                                          mesh=mesh)
          r = cluster.kmeans(key, X, k, ~L, n_iter=15, mesh=mesh)
          out[f"{tag}.M.kc.{k}"] = cluster.kcenter_greedy(X, k, lab, chunk_size=64, mesh=mesh)
          out[f"{tag}.M.kc_key.{s}.{k}"] = cluster.kcenter_greedy(
              X, k, np.zeros(n, bool), key=key, mesh=mesh)
          out[f"{tag}.M.kc_none.{k}"] = cluster.kcenter_greedy(X, k, np.zeros(n, bool),
                                                               mesh=mesh)
          out[f"{tag}.M.topk.{k}"] = cluster.top_k_unlabeled(S, L, k, mesh=mesh)
          out[f"{tag}.M.near.{s}.{k}"] = cluster.nearest_to_centroids(key, X, k, ~L, 15,
                                                                      mesh=mesh)
        for f in r._fields:
          out[f"{tag}.M.km.{s}.{k}.{f}"] = getattr(r, f)
      mctx = jal.Context(None, None, None, None, L, 10, 64, mesh)
      for name, aux in (("random", None), ("margin", logits), ("entropy", logits),
                        ("least_confidence", logits), ("bald", mc), ("coreset", (logits, x)),
                        ("kmeans", (logits, x)), ("badge", (logits, x))):
        p = jal.get_strategy(name).pick(key, mctx, aux, 25)
        p = p[0] if isinstance(p, tuple) else p
        out[f"{tag}.M.pick.{name}.{s}"] = p
  np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in out.items()})
  print(jal.__file__, len(out), "arrays")


if __name__ == "__main__":
  main()
