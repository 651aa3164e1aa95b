"""Cluster-Margin (Citovsky et al., NeurIPS 2021, "Batch Active Learning at Scale").

BASELINES.md §4. Once, at the first query, the pool's penultimate embeddings under the round-0
model are clustered by agglomerative clustering (average linkage, Euclidean, the dendrogram cut
into ``⌊n / cluster_size⌋`` clusters: mean cluster size ``cluster_size``, the ε rule the ports
quote). The labels are the strategy's state (``Strategy.state``), so they are checkpointed with
the run and a resumed run picks what an uninterrupted one does. Every round: the ``k_m =
km_factor · B`` unlabeled rows of smallest top-2 margin are the candidates; they are grouped by
cluster, the groups sorted by size ascending (ties: cluster id), and a round-robin over the
groups takes one random member of each visited group (without replacement) until ``B`` rows are
taken.

**Approximation on large pools (flag ``hac_points``).** Exact average-linkage HAC needs the
condensed ``n(n − 1)/2`` float64 distance matrix (14 GB at 60k). When the pool has more than
``hac_points`` rows, HAC runs exactly on a uniform random subsample of ``hac_points`` rows (the
key of the state), cut into ``⌊hac_points / cluster_size⌋`` clusters; every other row joins the
cluster whose subsample centroid is nearest (chunked). The subsample's rows keep their HAC
labels. The mean cluster size on the pool is then ``cluster_size · n / hac_points`` (≈ 100 on a
60k pool with the default 6,000), not ``cluster_size``: say so next to results. With
``hac_points ≥ n`` the clustering is the exact one. Memory: ``O(hac_points²)`` for the linkage
plus ``O(chunk · clusters)`` for the assignment, whatever ``n``.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from jal import cluster, parallel, scores
from jal.strategies.base import Context, Strategy
from jal.train import predict

__all__ = ["cluster_margin_strategy", "hac_clusters", "round_robin"]


@functools.partial(jax.jit, static_argnames=("chunk",))
def _assign(x, centroids, chunk):
  return parallel.chunked_map(lambda c: cluster.nearest_centroid(c[0], centroids), (x,), chunk)


def hac_clusters(key: jax.Array, emb, *, cluster_size: int = 10, hac_points: int = 6000,
                 chunk_size: int = 1024) -> np.ndarray:
  """Average-linkage agglomerative clustering of the pool (exact, or on a subsample).

  Args:
    key: PRNG key of the subsample (unused when ``n ≤ hac_points``).
    emb: ``[n, D]`` embeddings.
    cluster_size: target mean cluster size; the dendrogram is cut into
      ``max(1, ⌊s / cluster_size⌋)`` clusters (``fcluster(..., "maxclust")``), ``s`` the number
      of rows clustered exactly.
    hac_points: most rows clustered exactly; above it, HAC on a random subsample of this size
      and nearest-centroid assignment of the rest (module docstring).
    chunk_size: rows per chunk of the nearest-centroid assignment.

  Returns:
    ``[n]`` int32 labels ``0 … C − 1`` (``C`` the number of clusters actually formed).
  """
  if cluster_size < 1 or hac_points < 2:
    raise ValueError(f"need cluster_size >= 1 and hac_points >= 2, got {cluster_size}, "
                     f"{hac_points}")
  x = np.asarray(emb, np.float32)
  n = x.shape[0]
  if n <= hac_points:
    sub = np.arange(n)
  else:
    sub = np.sort(np.asarray(jax.random.choice(key, n, (hac_points,), replace=False)))
  s = sub.size
  n_clusters = max(1, s // cluster_size)
  if s == 1:
    lab_sub = np.zeros(1, np.int64)
  else:
    from scipy.cluster import hierarchy  # on first use: ≈ 0.7 s of scipy at every start-up
    from scipy.spatial.distance import pdist
    z = hierarchy.linkage(pdist(x[sub].astype(np.float64)), method="average")
    lab_sub = hierarchy.fcluster(z, n_clusters, criterion="maxclust")
  _, lab_sub = np.unique(lab_sub, return_inverse=True)
  if s == n:
    return lab_sub.astype(np.int32)
  c = int(lab_sub.max()) + 1
  sums = np.zeros((c, x.shape[1]), np.float64)
  np.add.at(sums, lab_sub, x[sub])
  centroids = (sums / np.bincount(lab_sub, minlength=c)[:, None]).astype(np.float32)
  labels = np.asarray(_assign(jnp.asarray(x), jnp.asarray(centroids), int(chunk_size)))
  labels = labels.astype(np.int32)
  labels[sub] = lab_sub
  return labels


def round_robin(key: jax.Array, groups, budget: int) -> np.ndarray:
  """Round-robin over candidate groups, smallest group first.

  The groups (distinct values of ``groups``) are visited in order of size ascending, ties by
  group id; each visit takes one member of the group uniformly at random without replacement;
  the cycle repeats until ``budget`` members are taken or all are.

  Args:
    key: PRNG key of the within-group order.
    groups: ``[m]`` int group id of every candidate.
    budget: members to take.

  Returns:
    ``[min(budget, m)]`` positions into ``groups``, in the order taken.
  """
  groups = np.asarray(groups)
  m = groups.size
  u = np.asarray(jax.random.uniform(key, (m,)))
  ids, inv, sizes = np.unique(groups, return_inverse=True, return_counts=True)
  group_rank = np.empty(ids.size, np.int64)
  group_rank[np.lexsort((ids, sizes))] = np.arange(ids.size)
  by_group = np.lexsort((u, inv))  # members of each group in random order
  starts = np.cumsum(sizes) - sizes
  turn = np.empty(m, np.int64)  # which pass of the round-robin takes a member
  turn[by_group] = np.arange(m) - starts[inv[by_group]]
  return np.lexsort((group_rank[inv], turn))[:budget]


def _pool_clusters(key, ctx: Context, cluster_size, hac_points) -> np.ndarray:
  n = ctx.labeled.shape[0]
  emb = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)[1]
  return hac_clusters(key, np.asarray(emb)[:n], cluster_size=cluster_size,
                      hac_points=hac_points, chunk_size=ctx.chunk_size)


@jax.jit
def _neg_margin(logits):
  return scores.margin_score(jax.nn.softmax(logits, -1))


def cluster_margin_strategy(km_factor: float = 10.0, cluster_size: int = 10,
                            hac_points: int = 6000) -> Strategy:
  """Cluster-Margin: margin candidates, round-robin over a once-computed HAC clustering.

  Args:
    km_factor: candidates per query point, ``k_m = ⌈km_factor · B⌉`` (all of U when fewer).
    cluster_size: target mean cluster size of the HAC cut (10 in the ports).
    hac_points: most rows clustered exactly; larger pools are clustered by HAC on a random
      subsample plus nearest-centroid assignment (module docstring: a flagged deviation).

  Returns:
    A ``Strategy`` with ``state`` = ``{"labels": [n] int32, "seconds", "fresh"}``, the labels
    computed at the first query from that round's model and kept for the rest of the run
    (``seconds`` the clustering's cost, reported as ``clustering_seconds`` in that round's
    ``pick_info``). Called without the loop
    (``ctx.state`` is ``None``), the pick clusters with the current model from its own key.
  """
  if km_factor < 1:
    raise ValueError(f"km_factor must be >= 1, got {km_factor}")
  if cluster_size < 1 or hac_points < 2:
    raise ValueError(f"need cluster_size >= 1 and hac_points >= 2, got {cluster_size}, "
                     f"{hac_points}")

  def state(key, ctx: Context, prev):
    if prev is not None:
      return {**prev, "fresh": 0}
    t0 = time.perf_counter()
    labels = _pool_clusters(key, ctx, cluster_size, hac_points)
    return {"labels": labels, "seconds": time.perf_counter() - t0, "fresh": 1}

  def score(key, ctx: Context):
    return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)[0]

  def pick(key, ctx: Context, logits, budget):
    k_cluster, k_rr = jax.random.split(key)
    info = {}
    if ctx.state is not None:
      labels = np.asarray(ctx.state["labels"])
      if int(ctx.state["fresh"]):  # the round that clustered reports it (the loop's table)
        info["clustering_seconds"] = float(ctx.state["seconds"])
    else:
      t0 = time.perf_counter()
      labels = _pool_clusters(k_cluster, ctx, cluster_size, hac_points)
      info["clustering_seconds"] = time.perf_counter() - t0
    labeled = np.asarray(ctx.labeled)
    n_u = int(labeled.size - labeled.sum())
    k_m = min(int(np.ceil(km_factor * budget)), n_u)
    with parallel.use_mesh(ctx.mesh):
      s = _neg_margin(logits)
    cand = np.asarray(cluster.top_k_unlabeled(s, ctx.labeled, k_m, mesh=ctx.mesh))
    order = round_robin(k_rr, labels[cand], budget)
    info.update(clusters=int(labels.max()) + 1, candidates=k_m,
                candidate_groups=int(np.unique(labels[cand]).size))
    return cand[order], info

  return Strategy("cluster_margin", score, pick, state=state)
