"""Jit-friendly clustering primitives for batch active learning.

All routines work on a point matrix ``x`` of shape ``[n, d]`` together with an
optional boolean ``mask`` of shape ``[n]`` marking the valid rows (padding or
already-labeled rows are ``False``). Shapes stay static: masks are used instead
of boolean indexing, so every routine compiles once per ``(n, d, k)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
  "DistFn",
  "KMeansResult",
  "d2_logits",
  "euclidean_sq_dist",
  "factored_sq_dist",
  "kcenter_greedy",
  "kmeans",
  "kmeans_plusplus",
  "kmeans_plusplus_factored",
  "lloyd_loop",
  "nearest_centroid",
  "pairwise_sq_dists",
]

# ``dist_to(j)`` maps a scalar row index ``j`` to the ``[n]`` vector of squared
# distances between every row and row ``j``.
DistFn = Callable[[jax.Array], jax.Array]

_HI = lax.Precision.HIGHEST  # Avoid TF32/bf16 matmuls on accelerators.


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


def _valid_mask(mask: jax.Array | None, n: int) -> jax.Array:
  if mask is None:
    return jnp.ones((n,), dtype=bool)
  return jnp.asarray(mask, dtype=bool)


def pairwise_sq_dists(
  x: jax.Array,
  y: jax.Array,
  x_sq: jax.Array | None = None,
  y_sq: jax.Array | None = None,
) -> jax.Array:
  """Squared Euclidean distances via ``‖x‖² + ‖y‖² − 2 x·y``, clipped at 0.

  Args:
    x: ``[n, d]`` points.
    y: ``[m, d]`` points.
    x_sq: optional precomputed ``[n]`` squared norms of ``x``.
    y_sq: optional precomputed ``[m]`` squared norms of ``y``.

  Returns:
    ``[n, m]`` non-negative squared distances.
  """
  x_sq = jnp.sum(x * x, axis=-1) if x_sq is None else x_sq
  y_sq = jnp.sum(y * y, axis=-1) if y_sq is None else y_sq
  cross = jnp.matmul(x, y.T, precision=_HI)
  return jnp.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * cross, 0.0)


def nearest_centroid(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """Index of the nearest centroid for every row.

  Args:
    x: ``[n, d]`` points.
    centroids: ``[k, d]`` centres.

  Returns:
    ``[n]`` int32 indices into ``centroids`` (ties go to the lowest index).
  """
  return jnp.argmin(pairwise_sq_dists(x, centroids), axis=1).astype(jnp.int32)


def euclidean_sq_dist(x: jax.Array, sq_norms: jax.Array | None = None) -> DistFn:
  """Builds ``dist_to(j) -> [n]`` with ``‖x_i − x_j‖²`` (matvec expansion, clipped ≥ 0).

  Args:
    x: ``[n, d]`` points.
    sq_norms: optional precomputed ``[n]`` squared norms of ``x``.

  Returns:
    A function mapping a scalar row index to ``[n]`` squared distances, O(n·d).
  """
  sq = jnp.sum(x * x, axis=-1) if sq_norms is None else sq_norms

  def dist_to(j: jax.Array) -> jax.Array:
    cross = jnp.matmul(x, x[j], precision=_HI)
    return jnp.maximum(sq + sq[j] - 2.0 * cross, 0.0)

  return dist_to


def factored_sq_dist(a: jax.Array, e: jax.Array) -> DistFn:
  """Distances between outer-product embeddings ``g_i = a_i ⊗ e_i``.

  Uses ``‖g_i − g_j‖² = ‖a_i‖²‖e_i‖² + ‖a_j‖²‖e_j‖² − 2 (a_i·a_j)(e_i·e_j)`` so the
  ``[n, K·D]`` BADGE gradient embedding is never materialised.

  Args:
    a: ``[n, K]`` first factor (e.g. ``softmax − one_hot(pseudo label)``).
    e: ``[n, D]`` second factor (e.g. penultimate-layer features).

  Returns:
    ``dist_to(j) -> [n]`` squared distances (clipped ≥ 0), O(n·(K + D)) per call.
  """
  self_sq = jnp.sum(a * a, axis=-1) * jnp.sum(e * e, axis=-1)

  def dist_to(j: jax.Array) -> jax.Array:
    cross = jnp.matmul(a, a[j], precision=_HI) * jnp.matmul(e, e[j], precision=_HI)
    return jnp.maximum(self_sq + self_sq[j] - 2.0 * cross, 0.0)

  return dist_to


def d2_logits(avail: jax.Array, min_d: jax.Array) -> jax.Array:
  """``[n]`` log-weights of a k-means++ draw: ``log D²`` over the available rows.

  When every available D² is zero (duplicates) the draw falls back to uniform over the
  available rows, so no index is ever picked twice.
  """
  w = jnp.where(avail, min_d, 0.0)
  w = jnp.where(jnp.sum(w) > 0.0, w, avail.astype(w.dtype))
  return jnp.where(w > 0.0, jnp.log(jnp.where(w > 0.0, w, 1.0)), -jnp.inf)


def _d2_seeding(key: jax.Array, dist_fn: DistFn, valid: jax.Array, k: int) -> jax.Array:
  """Core D² sampling loop; keeps a running ``[n]`` min-distance vector."""
  keys = jax.random.split(key, k)
  first = jax.random.categorical(keys[0], jnp.where(valid, 0.0, -jnp.inf)).astype(jnp.int32)
  idx = jnp.zeros((k,), jnp.int32).at[0].set(first)
  avail = valid.at[first].set(False)
  min_d = dist_fn(first)

  def body(i, carry):
    idx, avail, min_d = carry
    j = jax.random.categorical(keys[i], d2_logits(avail, min_d)).astype(jnp.int32)
    return idx.at[i].set(j), avail.at[j].set(False), jnp.minimum(min_d, dist_fn(j))

  idx, _, _ = lax.fori_loop(1, k, body, (idx, avail, min_d))
  return idx


@functools.partial(jax.jit, static_argnames=("k",))
def _kmeans_plusplus_euclidean(key, x, k, mask, sq_norms):
  return _d2_seeding(key, euclidean_sq_dist(x, sq_norms), _valid_mask(mask, x.shape[0]), k)


def kmeans_plusplus(
  key: jax.Array,
  x: jax.Array,
  k: int,
  mask: jax.Array | None = None,
  sq_norms: jax.Array | None = None,
  dist_fn: DistFn | None = None,
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

  Returns:
    ``[k]`` int32 unique row indices.
  """
  if dist_fn is None:
    return _kmeans_plusplus_euclidean(key, x, k, mask, sq_norms)
  return _d2_seeding(key, dist_fn, _valid_mask(mask, x.shape[0]), k)


@functools.partial(jax.jit, static_argnames=("k",))
def kmeans_plusplus_factored(
  key: jax.Array, a: jax.Array, e: jax.Array, k: int, mask: jax.Array | None = None
) -> jax.Array:
  """k-means++ seeding on embeddings ``g_i = a_i ⊗ e_i`` (BADGE), never materialised.

  Args:
    key: PRNG key.
    a: ``[n, K]`` first factor.
    e: ``[n, D]`` second factor.
    k: static number of centres (``k ≤ mask.sum()``).
    mask: optional ``[n]`` bool of selectable rows.

  Returns:
    ``[k]`` int32 unique row indices (same draws as :func:`kmeans_plusplus` on
    the materialised ``[n, K·D]`` matrix for the same key, up to rounding).
  """
  return _d2_seeding(key, factored_sq_dist(a, e), _valid_mask(mask, a.shape[0]), k)


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
  """One k-means run on (already centred) ``x``; returns ``KMeansResult``."""
  sq = jnp.sum(x * x, axis=-1)
  w = valid.astype(x.dtype)

  def assign(c):
    a = jnp.argmin(pairwise_sq_dists(x, c, x_sq=sq), axis=1).astype(jnp.int32)
    resid = x - c[a]
    inertia = jnp.sum(w * jnp.sum(resid * resid, axis=-1))
    return a, inertia

  def update(a, c):
    onehot = jax.nn.one_hot(a, k, dtype=x.dtype) * w[:, None]
    counts = jnp.sum(onehot, axis=0)
    sums = jnp.matmul(onehot.T, x, precision=_HI)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where((counts > 0.0)[:, None], means, c)  # Empty: keep old centre.

  c0 = x[_d2_seeding(key, euclidean_sq_dist(x, sq), valid, k)]
  c, it = lloyd_loop(assign, update, c0, n_iter, tol)
  a, inertia = assign(c)
  return KMeansResult(c, jnp.where(valid, a, -1), inertia, it)


@functools.partial(jax.jit, static_argnames=("k", "n_iter", "n_init"))
def kmeans(
  key: jax.Array,
  x: jax.Array,
  k: int,
  mask: jax.Array | None = None,
  n_iter: int = 100,
  n_init: int = 1,
  tol: float = 1e-6,
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
    n_init: static number of seeds run in parallel (``vmap``); the run with the
      lowest inertia is returned.
    tol: relative inertia-change tolerance.

  Returns:
    :class:`KMeansResult` with centroids ``[k, d]``, assignment ``[n]`` (−1 for
    masked rows), inertia and the number of iterations of the chosen run.
  """
  valid = _valid_mask(mask, x.shape[0])
  w = valid.astype(x.dtype)
  shift = jnp.matmul(w, x, precision=_HI) / jnp.maximum(jnp.sum(w), 1.0)
  xc = x - shift[None, :]
  keys = jax.random.split(key, n_init)
  runs = jax.vmap(lambda kk: _lloyd(kk, xc, valid, k, n_iter, tol))(keys)
  best = jnp.argmin(runs.inertia)
  res = jax.tree.map(lambda v: v[best], runs)
  return res._replace(centroids=res.centroids + shift[None, :])


@functools.partial(jax.jit, static_argnames=("budget", "chunk"))
def _kcenter_core(x, lab_idx, lab_valid, avail, start_scores, budget, chunk):
  """Greedy k-center on centred ``x`` given a padded list of labeled rows."""
  n = x.shape[0]
  sq = jnp.sum(x * x, axis=-1)

  def scan_chunk(min_d, chunk_in):
    idx, ok = chunk_in
    d = pairwise_sq_dists(x, x[idx], x_sq=sq, y_sq=sq[idx])  # [n, chunk]
    d = jnp.where(ok[None, :], d, jnp.inf)
    return jnp.minimum(min_d, jnp.min(d, axis=1)), None

  min_d = jnp.full((n,), jnp.inf, x.dtype)
  chunks = (lab_idx.reshape(-1, chunk), lab_valid.reshape(-1, chunk))
  min_d, _ = lax.scan(scan_chunk, min_d, chunks)

  def dist_to(j):
    diff = x - x[j][None, :]
    return jnp.sum(diff * diff, axis=-1)

  def pick(min_d, avail):
    return jnp.argmax(jnp.where(avail, min_d, -jnp.inf)).astype(jnp.int32)

  any_lab = jnp.any(lab_valid)
  first = pick(jnp.where(any_lab, min_d, start_scores), avail)
  out = jnp.zeros((budget,), jnp.int32).at[0].set(first)
  carry = (out, avail.at[first].set(False), jnp.minimum(min_d, dist_to(first)))

  def body(i, carry):
    out, avail, min_d = carry
    j = pick(min_d, avail)
    return out.at[i].set(j), avail.at[j].set(False), jnp.minimum(min_d, dist_to(j))

  out, _, _ = lax.fori_loop(1, budget, body, carry)
  return out


def _concrete(v):
  try:
    return np.asarray(v)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def kcenter_greedy(
  x: jax.Array,
  budget: int,
  labeled_mask: jax.Array,
  candidate_mask: jax.Array | None = None,
  *,
  key: jax.Array | None = None,
  chunk_size: int = 1024,
) -> jax.Array:
  """Greedy k-center selection (CoreSet, Sener & Savarese 2018).

  Computes every point's squared distance to the labeled set with a
  ``lax.scan`` over fixed-size chunks of labeled rows (memory
  O(n · chunk_size)), then takes ``budget`` greedy steps: pick the available
  candidate farthest from its nearest centre and update the ``[n]``
  min-distance vector with distances to it (O(n·d) per step). The "centres"
  are the labeled rows plus the picks; all rows are covered. Ties go to the
  lowest index.

  If there are no labeled rows, the first pick is the candidate farthest from
  the mean of the candidates (deterministic) or, if ``key`` is given, a
  uniformly random candidate.

  With concrete masks, labeled rows are compacted and padded (to a power of two
  ≤ ``chunk_size``, then a multiple of it) so cost scales with their number, and
  ``budget`` is validated. Under tracing (inside ``jax.jit``) all rows are
  scanned with the mask applied and ``budget`` is not checked.

  Args:
    x: ``[n, d]`` points.
    budget: number of points to select (Python int).
    labeled_mask: ``[n]`` bool, True for already-labeled rows.
    candidate_mask: optional ``[n]`` bool of selectable rows (default all);
      labeled rows are never selected.
    key: optional PRNG key for the first pick when nothing is labeled.
    chunk_size: rows of the labeled set processed per scan step.

  Returns:
    ``[budget]`` int32 unique indices of unlabeled candidates, in pick order.

  Raises:
    ValueError: on shape mismatch, or if ``budget`` exceeds the number of
      unlabeled candidates.
  """
  x = jnp.asarray(x)
  if x.ndim != 2:
    raise ValueError(f"x must be [n, d], got shape {x.shape}")
  n = x.shape[0]
  budget = int(budget)
  if budget < 0 or chunk_size < 1:
    raise ValueError(f"need budget >= 0 and chunk_size >= 1, got {budget}, {chunk_size}")
  labeled = jnp.asarray(labeled_mask, dtype=bool)
  cand = jnp.ones((n,), bool) if candidate_mask is None else jnp.asarray(candidate_mask, bool)
  if labeled.shape != (n,) or cand.shape != (n,):
    raise ValueError(f"masks must have shape ({n},), got {labeled.shape} and {cand.shape}")
  avail = cand & ~labeled

  lab_np, avail_np = _concrete(labeled), _concrete(avail)
  if avail_np is not None and budget > int(avail_np.sum()):
    raise ValueError(
      f"budget={budget} exceeds the number of unlabeled candidates ({int(avail_np.sum())})"
    )
  if budget == 0:
    return jnp.zeros((0,), jnp.int32)

  if lab_np is not None:
    idx = np.flatnonzero(lab_np).astype(np.int32)
    n_lab = max(idx.size, 1)
  else:
    idx, n_lab = None, n
  chunk = min(chunk_size, 1 << (n_lab - 1).bit_length())
  n_pad = -(-n_lab // chunk) * chunk
  if idx is not None:
    lab_valid = jnp.asarray(np.arange(n_pad) < idx.size)
    lab_idx = jnp.asarray(np.pad(idx, (0, n_pad - idx.size)))
  else:
    lab_idx = jnp.arange(n_pad, dtype=jnp.int32) % n
    lab_valid = jnp.pad(labeled, (0, n_pad - n))

  wa = avail.astype(x.dtype)
  xc = x - (jnp.matmul(wa, x, precision=_HI) / jnp.maximum(jnp.sum(wa), 1.0))[None, :]
  if key is None:
    start_scores = jnp.sum(xc * xc, axis=-1)
  else:
    start_scores = jax.random.uniform(key, (n,), x.dtype)
  return _kcenter_core(xc, lab_idx, lab_valid, avail, start_scores, budget, chunk)
