"""Pool-wide selection that stays sharded along ``data``: top-k, k-center, k-means(++).

Every function takes the pool-sized arrays (scores ``[n]``, embeddings ``[n, d]``, masks
``[n]``) and a ``jal.parallel`` mesh, pads ``n`` to a multiple of the device count (padding
is never selectable), splits the rows along ``data`` and runs one ``jit``'d program in which
the ``[n]`` vectors (masked scores, min-distances, assignments) never leave their shard.
What crosses devices is small and explicit in the maths:

* top-k: each device keeps its local top-``k`` (``[devices, k]``), then one ``top_k`` over
  the ``devices · k`` candidates; ties go to the lowest global index, as in
  ``jal.strategies.top_k_unlabeled``.
* k-center / k-means++: per step one sharded ``argmax``/categorical draw (a reduction) and
  the chosen row (``[d]``) fetched by a local gather plus an all-reduce
  (:func:`gather_rows`); the ``[n]`` min-distance vector stays sharded.
* Lloyd: assignment is local (centroids replicated); the ``[k, d]`` sums and ``[k]``
  counts are all-reduced.

With ``n`` a multiple of the device count the results equal the single-device functions in
``jal.strategies`` / ``jal.cluster`` (same random draws; distances up to float rounding).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jal import cluster, parallel
from jal.cluster import KMeansResult, pairwise_sq_dists

__all__ = ["gather_rows", "top_k_unlabeled", "kcenter_greedy", "kmeans_plusplus",
           "kmeans_plusplus_factored", "kmeans", "nearest_to_centroids"]

_HI = lax.Precision.HIGHEST


def gather_rows(x: jax.Array, idx: jax.Array) -> jax.Array:
  """``x[idx]`` for row-sharded ``x`` ``[n, ...]`` without gathering ``x``: each device
  gathers from its own shard, rows it does not own are zeroed, and a sum over devices (an
  all-reduce of ``[m, ...]``) assembles the result. Exact (adds zeros). Call under ``jit``.

  Args:
    x: ``[n, ...]``, ``n`` a multiple of the ``data`` size.
    idx: ``[m]`` int row indices (replicated).

  Returns:
    ``[m, ...]`` rows, replicated.
  """
  d = parallel.data_size()
  n_loc = x.shape[0] // d
  x3 = parallel.constrain_rows(x.reshape(d, n_loc, *x.shape[1:]))
  g = x3[:, idx % n_loc]  # [d, m, ...] local gather on every shard
  own = jnp.arange(d)[:, None] == (idx // n_loc)[None, :]
  own = own.reshape(*own.shape, *([1] * (x.ndim - 1)))
  return parallel.constrain_replicated(jnp.sum(jnp.where(own, g, jnp.zeros_like(g)), axis=0))


def _iota(n):
  return parallel.constrain_rows(jnp.arange(n, dtype=jnp.int32))


def _prep(mesh, *arrays_and_fills):
  """Pads each ``(array, fill)`` to a multiple of the mesh size and splits rows on ``data``."""
  return tuple(parallel.shard_rows(jnp.asarray(a), mesh, fill) for a, fill in arrays_and_fills)


# --------------------------------------------------------------------------------- top-k


@functools.partial(jax.jit, static_argnames=("budget",))
def _top_k(scores, labeled, budget):
  d = parallel.data_size()
  n = scores.shape[0]
  masked = parallel.constrain_rows(jnp.where(labeled, -jnp.inf, scores.astype(jnp.float32)))
  per = parallel.constrain_rows(masked.reshape(d, n // d))
  gid = parallel.constrain_rows(jnp.arange(n, dtype=jnp.int32).reshape(d, n // d))
  # Local top-k of every shard. A row-wise sort (descending score, then ascending index) and
  # not ``lax.top_k``: XLA's SPMD partitioner keeps a batched sort on its shard but gathers
  # the operand of a TopK op onto every device.
  neg, gi = lax.sort((-per, gid), dimension=1, num_keys=2)
  k = min(budget, n // d)
  v, i = parallel.constrain_replicated((-neg[:, :k].reshape(-1), gi[:, :k].reshape(-1)))
  return i[lax.top_k(v, budget)[1]]


def top_k_unlabeled(scores: jax.Array, labeled: jax.Array, budget: int, mesh) -> jax.Array:
  """Sharded ``jal.strategies.top_k_unlabeled``: indices ``[budget]`` of the highest
  ``scores`` ``[n]`` among rows with ``labeled`` ``[n]`` False (ties: lowest index)."""
  s, lab = _prep(mesh, (scores, -jnp.inf), (labeled, True))
  with parallel.use_mesh(mesh):
    return _top_k(s, lab, int(budget))


@functools.partial(jax.jit, static_argnames=("n", "n_pad"))
def _uniform_scores(key, n, n_pad):
  return parallel.constrain_rows(parallel.pad_rows(jax.random.uniform(key, (n,)), n_pad, 0.0))


def uniform_scores(key: jax.Array, n: int, mesh) -> jax.Array:
  """``jax.random.uniform(key, (n,))`` padded to the mesh and split along ``data`` (the
  draws do not depend on the mesh: JAX's partitionable threefry)."""
  with parallel.use_mesh(mesh):
    return _uniform_scores(key, int(n), parallel.padded_size(n, mesh.shape[parallel.DATA]))


# ------------------------------------------------------------------------------ k-center


@functools.partial(jax.jit, static_argnames=("budget", "chunk"))
def _kcenter(x, avail, lab_idx, lab_valid, start_scores, budget, chunk):
  n = x.shape[0]
  x, avail = parallel.constrain_rows(x), parallel.constrain_rows(avail)
  wa = avail.astype(x.dtype)
  xc = parallel.constrain_rows(
      x - (jnp.matmul(wa, x, precision=_HI) / jnp.maximum(jnp.sum(wa), 1.0))[None, :])
  sq = jnp.sum(xc * xc, axis=-1)

  def scan_chunk(min_d, chunk_in):
    idx, ok = chunk_in
    d = pairwise_sq_dists(xc, gather_rows(xc, idx), x_sq=sq, y_sq=gather_rows(sq, idx))
    d = jnp.where(ok[None, :], d, jnp.inf)
    return parallel.constrain_rows(jnp.minimum(min_d, jnp.min(d, axis=1))), None

  min_d = parallel.constrain_rows(jnp.full((n,), jnp.inf, x.dtype))
  min_d, _ = lax.scan(scan_chunk, min_d, (lab_idx.reshape(-1, chunk),
                                          lab_valid.reshape(-1, chunk)))
  iota = _iota(n)

  def dist_to(j):
    diff = xc - gather_rows(xc, j[None])
    return jnp.sum(diff * diff, axis=-1)

  def pick(min_d, avail):
    return jnp.argmax(jnp.where(avail, min_d, -jnp.inf)).astype(jnp.int32)

  first = pick(jnp.where(jnp.any(lab_valid), min_d, start_scores), avail)
  out = jnp.zeros((budget,), jnp.int32).at[0].set(first)

  def body(i, carry):
    out, avail, min_d = carry
    j = out[i - 1]
    avail, min_d = avail & (iota != j), jnp.minimum(min_d, dist_to(j))
    j = pick(min_d, avail)
    return out.at[i].set(j), avail, min_d

  out, _, _ = lax.fori_loop(1, budget, body, (out, avail, min_d))
  return out


def kcenter_greedy(x: jax.Array, budget: int, labeled: jax.Array, mesh, *,
                   key: jax.Array | None = None, chunk_size: int = 1024) -> jax.Array:
  """Sharded greedy k-center (CoreSet); same contract as ``jal.cluster.kcenter_greedy``.

  The labeled rows (compacted on the host, padded to chunks of a power of two
  ``≤ chunk_size``) are fetched chunk by chunk with :func:`gather_rows`, so the initial
  min-distance pass holds ``[n / devices, chunk]`` per device; each greedy step then costs
  ``O(n·d / devices)`` per device plus an all-reduce of one ``[d]`` row and the argmax.

  Args:
    x: ``[n, d]`` embeddings.
    budget: points to select (``≤`` unlabeled count).
    labeled: ``[n]`` bool (concrete).
    mesh: the ``data`` mesh.
    key: optional PRNG key for the first pick when nothing is labeled.
    chunk_size: labeled rows per scan step.

  Returns:
    ``[budget]`` int32 indices, in pick order.
  """
  lab = np.asarray(labeled, bool)
  n = lab.shape[0]
  if budget < 1 or budget > n - int(lab.sum()):
    raise ValueError(f"budget={budget} must be in [1, {n - int(lab.sum())}]")
  idx = np.flatnonzero(lab).astype(np.int32)
  n_lab = max(idx.size, 1)
  chunk = min(int(chunk_size), 1 << (n_lab - 1).bit_length())
  n_pad_lab = -(-n_lab // chunk) * chunk
  lab_valid = jnp.asarray(np.arange(n_pad_lab) < idx.size)
  lab_idx = jnp.asarray(np.pad(idx, (0, n_pad_lab - idx.size)))
  xs, avail = _prep(mesh, (x, None), (~lab, False))
  with parallel.use_mesh(mesh):
    if key is None:  # First pick without labels: farthest from the candidates' mean.
      start = _centred_norms(xs, avail)
    else:
      start = _uniform_scores(key, n, xs.shape[0])
    return _kcenter(xs, avail, lab_idx, lab_valid, start, int(budget), chunk)


@jax.jit
def _centred_norms(x, avail):
  wa = avail.astype(x.dtype)
  xc = x - (jnp.matmul(wa, x, precision=_HI) / jnp.maximum(jnp.sum(wa), 1.0))[None, :]
  return parallel.constrain_rows(jnp.sum(xc * xc, axis=-1))


# ------------------------------------------------------------------- k-means++ and Lloyd


def _d2_seeding(key, dist_fn, valid, k, rows=None):
  """Mirror of ``jal.cluster._d2_seeding`` with sharded updates; optionally also returns the
  ``[k, ...]`` chosen rows of ``rows`` (fetched with :func:`gather_rows`)."""
  n = valid.shape[0]
  iota = _iota(n)
  keys = jax.random.split(key, k)
  first = jax.random.categorical(keys[0], jnp.where(valid, 0.0, -jnp.inf)).astype(jnp.int32)
  idx = jnp.zeros((k,), jnp.int32).at[0].set(first)
  avail = parallel.constrain_rows(valid & (iota != first))
  min_d = parallel.constrain_rows(dist_fn(first))

  def body(i, carry):
    idx, avail, min_d = carry
    j = jax.random.categorical(keys[i], cluster.d2_logits(avail, min_d)).astype(jnp.int32)
    return (idx.at[i].set(j), parallel.constrain_rows(avail & (iota != j)),
            parallel.constrain_rows(jnp.minimum(min_d, dist_fn(j))))

  idx, _, _ = lax.fori_loop(1, k, body, (idx, avail, min_d))
  return idx


def _euclidean(x, sq):
  def dist_to(j):
    cross = jnp.matmul(x, gather_rows(x, j[None])[0], precision=_HI)
    return jnp.maximum(sq + gather_rows(sq, j[None])[0] - 2.0 * cross, 0.0)
  return dist_to


@functools.partial(jax.jit, static_argnames=("k",))
def _kpp(key, x, valid, k):
  x = parallel.constrain_rows(x)
  return _d2_seeding(key, _euclidean(x, jnp.sum(x * x, axis=-1)), valid, k)


@functools.partial(jax.jit, static_argnames=("k",))
def _kpp_factored(key, a, e, valid, k):
  a, e = parallel.constrain_rows(a), parallel.constrain_rows(e)
  self_sq = jnp.sum(a * a, axis=-1) * jnp.sum(e * e, axis=-1)

  def dist_to(j):
    aj, ej = gather_rows(a, j[None])[0], gather_rows(e, j[None])[0]
    cross = jnp.matmul(a, aj, precision=_HI) * jnp.matmul(e, ej, precision=_HI)
    return jnp.maximum(self_sq + gather_rows(self_sq, j[None])[0] - 2.0 * cross, 0.0)

  return _d2_seeding(key, dist_to, valid, k)


def kmeans_plusplus(key: jax.Array, x: jax.Array, k: int, mask: jax.Array, mesh) -> jax.Array:
  """Sharded ``jal.cluster.kmeans_plusplus``: ``[k]`` D²-seeded row indices of ``x`` ``[n, d]``
  among rows with ``mask`` ``[n]`` True."""
  xs, valid = _prep(mesh, (x, None), (mask, False))
  with parallel.use_mesh(mesh):
    return _kpp(key, xs, valid, int(k))


def kmeans_plusplus_factored(key: jax.Array, a: jax.Array, e: jax.Array, k: int,
                             mask: jax.Array, mesh) -> jax.Array:
  """Sharded ``jal.cluster.kmeans_plusplus_factored`` (BADGE): D² seeding on ``a_i ⊗ e_i``
  with ``a`` ``[n, K]`` and ``e`` ``[n, D]``, never materialising ``[n, K·D]``."""
  a_s, e_s, valid = _prep(mesh, (a, None), (e, None), (mask, False))
  with parallel.use_mesh(mesh):
    return _kpp_factored(key, a_s, e_s, valid, int(k))


def _lloyd(key, x, valid, k, n_iter, tol):
  """Mirror of ``jal.cluster._lloyd`` (centred ``x``, sharded rows, replicated centroids)."""
  sq = jnp.sum(x * x, axis=-1)
  w = valid.astype(x.dtype)

  def assign(c):
    a = parallel.constrain_rows(
        jnp.argmin(pairwise_sq_dists(x, c, x_sq=sq), axis=1).astype(jnp.int32))
    resid = x - c[a]
    return a, jnp.sum(w * jnp.sum(resid * resid, axis=-1))

  def update(a, c):
    onehot = jax.nn.one_hot(a, k, dtype=x.dtype) * w[:, None]
    counts = jnp.sum(onehot, axis=0)
    means = jnp.matmul(onehot.T, x, precision=_HI) / jnp.maximum(counts, 1.0)[:, None]
    return parallel.constrain_replicated(jnp.where((counts > 0.0)[:, None], means, c))

  def cond(state):
    _, prev, cur, it = state
    return (it < n_iter) & ~((it > 0) & (jnp.abs(prev - cur) <= tol * cur))

  def body(state):
    c, _, cur, it = state
    a, inertia = assign(c)
    return update(a, c), cur, inertia, it + 1

  c0 = gather_rows(x, _d2_seeding(key, _euclidean(x, sq), valid, k))
  inf = jnp.asarray(jnp.inf, x.dtype)
  c, _, _, it = lax.while_loop(cond, body, (c0, inf, inf, jnp.int32(0)))
  a, inertia = assign(c)
  return KMeansResult(c, jnp.where(valid, a, -1), inertia, it)


@functools.partial(jax.jit, static_argnames=("k", "n_iter"))
def _kmeans(key, x, valid, k, n_iter, tol):
  x = parallel.constrain_rows(x)
  w = valid.astype(x.dtype)
  shift = jnp.matmul(w, x, precision=_HI) / jnp.maximum(jnp.sum(w), 1.0)
  xc = parallel.constrain_rows(x - shift[None, :])
  res = _lloyd(jax.random.split(key, 1)[0], xc, valid, k, n_iter, tol)
  return res._replace(centroids=res.centroids + shift[None, :])


def kmeans(key: jax.Array, x: jax.Array, k: int, mask: jax.Array, mesh, n_iter: int = 100,
           tol: float = 1e-6) -> KMeansResult:
  """Sharded ``jal.cluster.kmeans`` (``n_init=1``) on ``x`` ``[n, d]``; the assignment comes
  back as ``[n_pad]`` (padding rows ``-1``), split along ``data``."""
  xs, valid = _prep(mesh, (x, None), (mask, False))
  with parallel.use_mesh(mesh):
    return _kmeans(key, xs, valid, int(k), int(n_iter), tol)


@functools.partial(jax.jit, static_argnames=("k", "n_iter"))
def _nearest(key, x, valid, k, n_iter):
  res = _kmeans(key, x, valid, k, n_iter, 1e-6)
  d = jnp.sum((x - res.centroids[jnp.maximum(res.assignment, 0)]) ** 2, axis=-1)
  member = res.assignment[None, :] == jnp.arange(k)[:, None]  # [k, n], n split on data
  return jnp.argmin(jnp.where(member, d[None, :], jnp.inf), axis=1)


def nearest_to_centroids(key: jax.Array, x: jax.Array, k: int, mask: jax.Array, mesh,
                         n_iter: int = 20) -> jax.Array:
  """The KMeans strategy's pick, sharded: k-means on rows with ``mask`` True, then the row
  nearest each centroid (``[k]`` indices; an empty cluster yields an arbitrary index that
  ``finalize_indices`` drops)."""
  xs, valid = _prep(mesh, (x, None), (mask, False))
  with parallel.use_mesh(mesh):
    return _nearest(key, xs, valid, int(k), int(n_iter))
