"""k-means++ (D²) seeding, plain and factored (BADGE), and Lloyd k-means.

All routines work on a point matrix ``x`` of shape ``[n, d]`` together with an optional
boolean ``mask`` of shape ``[n]`` marking the valid rows (padding or already-labeled rows are
``False``). Shapes stay static: masks are used instead of boolean indexing, so every routine
compiles once per ``(n, d, k)``. Each public function takes ``mesh=None`` (one device, callable
inside ``jit``) or a ``jal.parallel`` mesh (rows padded and split along ``data``; see
:mod:`jal.cluster.topk`): k-means++ then makes one sharded categorical draw per step and
fetches the chosen row with :func:`jal.cluster.gather_rows`; Lloyd assigns locally against
replicated centroids and all-reduces the ``[k, d]`` sums and ``[k]`` counts.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jal import parallel
from jal.cluster.distances import (
  _HI,
  DistFn,
  euclidean_sq_dist,
  factored_sq_dist,
  pairwise_sq_dists,
)
from jal.cluster.topk import _drop, _iota, _place, _valid_mask, gather_rows

__all__ = ["KMeansResult", "d2_logits", "kmeans", "kmeans_plusplus",
           "kmeans_plusplus_factored", "lloyd_loop", "nearest_to_centroids"]


class KMeansResult(NamedTuple):
  """Output of :func:`kmeans`.

  Attributes:
    centroids: ``[k, d]`` cluster centres.
    assignment: ``[n]`` int32 index of the nearest centroid; ``-1`` for masked rows.
    inertia: scalar sum of squared distances of valid rows to their centroid.
    n_iter: scalar int32 number of Lloyd iterations that were run.
  """

  centroids: jax.Array
  assignment: jax.Array
  inertia: jax.Array
  n_iter: jax.Array


def _mask_rows(mask, n):
  return jnp.ones((n,), bool) if mask is None else mask


def d2_logits(avail: jax.Array, min_d: jax.Array) -> jax.Array:
  """``[n]`` log-weights of a k-means++ draw: ``log D²`` over the available rows.

  When every available D² is zero (duplicates) the draw falls back to uniform over the
  available rows, so no index is ever picked twice.
  """
  w = jnp.where(avail, min_d, 0.0)
  w = jnp.where(jnp.sum(w) > 0.0, w, avail.astype(w.dtype))
  return jnp.where(w > 0.0, jnp.log(jnp.where(w > 0.0, w, 1.0)), -jnp.inf)


def _d2_seeding(key: jax.Array, dist_fn: DistFn, valid: jax.Array, k: int) -> jax.Array:
  """Core D² sampling loop; keeps a running ``[n]`` min-distance vector (sharded under a
  mesh, where the chosen row is cleared by a compare with a sharded iota)."""
  iota = _iota(valid.shape[0])
  keys = jax.random.split(key, k)
  first = jax.random.categorical(keys[0], jnp.where(valid, 0.0, -jnp.inf)).astype(jnp.int32)
  idx = jnp.zeros((k,), jnp.int32).at[0].set(first)
  avail = _drop(valid, first, iota)
  min_d = parallel.constrain_rows(dist_fn(first))

  def body(i, carry):
    idx, avail, min_d = carry
    j = jax.random.categorical(keys[i], d2_logits(avail, min_d)).astype(jnp.int32)
    return (idx.at[i].set(j), _drop(avail, j, iota),
            parallel.constrain_rows(jnp.minimum(min_d, dist_fn(j))))

  idx, _, _ = lax.fori_loop(1, k, body, (idx, avail, min_d))
  return idx


@functools.partial(jax.jit, static_argnames=("k",))
def _kpp_euclidean(key, x, k, mask, sq_norms):
  x = parallel.constrain_rows(x)
  return _d2_seeding(key, euclidean_sq_dist(x, sq_norms), _valid_mask(mask, x.shape[0]), k)


def kmeans_plusplus(
  key: jax.Array,
  x: jax.Array,
  k: int,
  mask: jax.Array | None = None,
  sq_norms: jax.Array | None = None,
  dist_fn: DistFn | None = None,
  *,
  mesh=None,
) -> jax.Array:
  """k-means++ (D²) seeding over the valid rows.

  The first centre is uniform among valid rows; each next one is drawn with
  probability ∝ its squared distance to the nearest chosen centre. Chosen rows
  get probability 0; when every remaining D² is 0 the draw is uniform among
  the unchosen valid rows, so the result never contains duplicates. Requires
  ``k ≤ mask.sum()`` (not checked, so the function stays jittable; violating it
  yields repeated or invalid indices).

  Args:
    key: PRNG key.
    x: ``[n, d]`` points (only ``x.shape[0]`` is used when ``dist_fn`` is given).
    k: static number of centres.
    mask: optional ``[n]`` bool, True for rows that may be picked.
    sq_norms: optional precomputed ``[n]`` squared norms of ``x``.
    dist_fn: optional ``dist_to(j) -> [n]`` squared-distance function (e.g.
      :func:`factored_sq_dist`). Such a call is not jitted as a whole; build
      ``dist_fn`` inside your own jitted function (see
      :func:`kmeans_plusplus_factored`) to avoid baking arrays in as constants.
      Not with a mesh.
    mesh: ``None`` (one device) or a ``jal.parallel`` mesh (rows split along ``data``).

  Returns:
    ``[k]`` int32 unique row indices.
  """
  if mesh is not None:
    if dist_fn is not None:
      raise ValueError("kmeans_plusplus: dist_fn cannot be combined with a mesh")
    n = x.shape[0]
    xs, valid = _place(mesh, (x, None), (_mask_rows(mask, n), False))
    sq = None if sq_norms is None else _place(mesh, (sq_norms, None))[0]
    with parallel.use_mesh(mesh):
      return _kpp_euclidean(key, xs, int(k), valid, sq)
  if dist_fn is None:
    return _kpp_euclidean(key, x, k, mask, sq_norms)
  return _d2_seeding(key, dist_fn, _valid_mask(mask, x.shape[0]), k)


@functools.partial(jax.jit, static_argnames=("k",))
def _kpp_factored(key, a, e, k, mask):
  a, e = parallel.constrain_rows(a), parallel.constrain_rows(e)
  return _d2_seeding(key, factored_sq_dist(a, e), _valid_mask(mask, a.shape[0]), k)


def kmeans_plusplus_factored(key: jax.Array, a: jax.Array, e: jax.Array, k: int,
                             mask: jax.Array | None = None, *, mesh=None) -> jax.Array:
  """k-means++ seeding on embeddings ``g_i = a_i ⊗ e_i`` (BADGE), never materialised.

  Args:
    key: PRNG key.
    a: ``[n, K]`` first factor.
    e: ``[n, D]`` second factor.
    k: static number of centres (``k ≤ mask.sum()``).
    mask: optional ``[n]`` bool of selectable rows.
    mesh: ``None`` (one device) or a ``jal.parallel`` mesh (rows split along ``data``).

  Returns:
    ``[k]`` int32 unique row indices (same draws as :func:`kmeans_plusplus` on
    the materialised ``[n, K·D]`` matrix for the same key, up to rounding).
  """
  if mesh is None:
    return _kpp_factored(key, a, e, k, mask)
  a_s, e_s, valid = _place(mesh, (a, None), (e, None), (_mask_rows(mask, a.shape[0]), False))
  with parallel.use_mesh(mesh):
    return _kpp_factored(key, a_s, e_s, int(k), valid)


def lloyd_loop(assign: Callable, update: Callable, c0: jax.Array, n_iter: int, tol: float
               ) -> tuple[jax.Array, jax.Array]:
  """Lloyd iterations until the relative change of the total inertia is ``≤ tol`` or
  ``n_iter`` iterations ran (a ``lax.while_loop``).

  Args:
    assign: ``centroids -> (assignment, inertia)`` (inertia: any shape; it is summed).
    update: ``(assignment, centroids) -> centroids``.
    c0: initial centroids (any shape ``update`` understands).
    n_iter: maximum number of iterations.
    tol: relative inertia-change tolerance.

  Returns:
    ``(centroids, iterations run)``.
  """
  def cond(state):
    _, prev, cur, it = state
    converged = (it > 0) & (jnp.abs(prev - cur) <= tol * cur)
    return (it < n_iter) & ~converged

  def body(state):
    c, _, cur, it = state
    a, inertia = assign(c)
    return update(a, c), cur, jnp.sum(inertia), it + 1

  inf = jnp.asarray(jnp.inf, c0.dtype)
  c, _, _, it = lax.while_loop(cond, body, (c0, inf, inf, jnp.int32(0)))
  return c, it


def _lloyd(key, x, valid, k, n_iter, tol):
  """One k-means run on (already centred) ``x``; returns ``KMeansResult``. Under a mesh the
  rows (and the assignment) stay sharded and the centroids are replicated."""
  sq = jnp.sum(x * x, axis=-1)
  w = valid.astype(x.dtype)

  def assign(c):
    a = parallel.constrain_rows(
        jnp.argmin(pairwise_sq_dists(x, c, x_sq=sq), axis=1).astype(jnp.int32))
    resid = x - c[a]
    inertia = jnp.sum(w * jnp.sum(resid * resid, axis=-1))
    return a, inertia

  def update(a, c):
    onehot = jax.nn.one_hot(a, k, dtype=x.dtype) * w[:, None]
    counts = jnp.sum(onehot, axis=0)
    sums = jnp.matmul(onehot.T, x, precision=_HI)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    # Empty: keep old centre.
    return parallel.constrain_replicated(jnp.where((counts > 0.0)[:, None], means, c))

  c0 = gather_rows(x, _d2_seeding(key, euclidean_sq_dist(x, sq), valid, k))
  c, it = lloyd_loop(assign, update, c0, n_iter, tol)
  a, inertia = assign(c)
  return KMeansResult(c, jnp.where(valid, a, -1), inertia, it)


@functools.partial(jax.jit, static_argnames=("k", "n_iter", "n_init"))
def _kmeans(key, x, k, mask, n_iter, n_init, tol):
  x = parallel.constrain_rows(x)
  valid = _valid_mask(mask, x.shape[0])
  w = valid.astype(x.dtype)
  shift = jnp.matmul(w, x, precision=_HI) / jnp.maximum(jnp.sum(w), 1.0)
  xc = parallel.constrain_rows(x - shift[None, :])
  keys = jax.random.split(key, n_init)
  run = lambda kk: _lloyd(kk, xc, valid, k, n_iter, tol)
  if parallel.data_size() == 1:  # the seeds side by side
    runs = jax.vmap(run)(keys)
    best = jnp.argmin(runs.inertia)
    res = jax.tree.map(lambda v: v[best], runs)
  else:  # sharded rows: the seeds one after another, the best kept elementwise
    res = run(keys[0])
    for i in range(1, n_init):
      r = run(keys[i])
      better = r.inertia < res.inertia  # ties keep the earlier seed, as argmin does
      res = jax.tree.map(lambda new, old, b=better: jnp.where(b, new, old), r, res)
  return res._replace(centroids=res.centroids + shift[None, :])


def kmeans(
  key: jax.Array,
  x: jax.Array,
  k: int,
  mask: jax.Array | None = None,
  n_iter: int = 100,
  n_init: int = 1,
  tol: float = 1e-6,
  *,
  mesh=None,
) -> KMeansResult:
  """k-means (k-means++ init + Lloyd) over the valid rows.

  Iterates until the relative change of inertia is ``≤ tol`` or ``n_iter``
  iterations ran. Masked rows are neither assigned nor counted. A cluster that
  loses all its members keeps its previous centroid. Distances use the matmul
  expansion on mean-centred data; the reported inertia is computed from exact
  differences with the final centroids and assignment.

  Args:
    key: PRNG key.
    x: ``[n, d]`` points.
    k: static number of clusters, ``k ≤ mask.sum()``.
    mask: optional ``[n]`` bool of rows to cluster.
    n_iter: static maximum number of Lloyd iterations.
    n_init: static number of seeds (``vmap`` on one device, one after another under a
      mesh); the run with the lowest inertia is returned.
    tol: relative inertia-change tolerance.
    mesh: ``None`` (one device, callable inside ``jit``) or a ``jal.parallel`` mesh.

  Returns:
    :class:`KMeansResult` with centroids ``[k, d]``, assignment ``[n]`` (−1 for
    masked rows; ``[n_pad]``, split along ``data``, under a mesh), inertia and the
    number of iterations of the chosen run.
  """
  if mesh is None:
    return _kmeans(key, x, k, mask, n_iter, n_init, tol)
  xs, valid = _place(mesh, (x, None), (_mask_rows(mask, x.shape[0]), False))
  with parallel.use_mesh(mesh):
    return _kmeans(key, xs, int(k), valid, int(n_iter), int(n_init), tol)


@functools.partial(jax.jit, static_argnames=("k", "n_iter"))
def _nearest(key, x, k, mask, n_iter):
  res = _kmeans(key, x, k, mask, n_iter, 1, 1e-6)
  d = jnp.sum((x - res.centroids[jnp.maximum(res.assignment, 0)]) ** 2, axis=-1)
  member = res.assignment[None, :] == jnp.arange(k)[:, None]  # [k, n]
  return jnp.argmin(jnp.where(member, d[None, :], jnp.inf), axis=1)


def nearest_to_centroids(key: jax.Array, x: jax.Array, k: int, mask: jax.Array | None = None,
                         n_iter: int = 20, *, mesh=None) -> jax.Array:
  """k-means with ``k`` clusters on the valid rows, then the row nearest each centroid.

  The KMeans strategy's pick (DeepAL+ ``KMeansSampling``).

  Args:
    key: PRNG key.
    x: ``[n, d]`` points.
    k: static number of clusters.
    mask: optional ``[n]`` bool of rows to cluster.
    n_iter: static maximum number of Lloyd iterations.
    mesh: ``None`` (one device) or a ``jal.parallel`` mesh.

  Returns:
    ``[k]`` row indices; an empty cluster yields an arbitrary index (that
    ``jal.strategies.finalize_indices`` drops).
  """
  if mesh is None:
    return _nearest(key, x, k, mask, n_iter)
  xs, valid = _place(mesh, (x, None), (_mask_rows(mask, x.shape[0]), False))
  with parallel.use_mesh(mesh):
    return _nearest(key, xs, int(k), valid, int(n_iter))
