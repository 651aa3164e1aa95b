"""Squared Euclidean distances: pairwise, nearest centroid, and ``dist_to(j)`` row functions.

The ``dist_to`` builders (:func:`euclidean_sq_dist`, :func:`factored_sq_dist`) fetch row ``j``
with :func:`jal.cluster.gather_rows`, so the same function serves a single device and, traced
under a mesh, row-sharded inputs (the ``[n]`` result stays on its shard).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jal.cluster.topk import _row

__all__ = ["DistFn", "euclidean_sq_dist", "factored_sq_dist", "nearest_centroid",
           "pairwise_sq_dists"]

# ``dist_to(j)`` maps a scalar row index ``j`` to the ``[n]`` vector of squared
# distances between every row and row ``j``.
DistFn = Callable[[jax.Array], jax.Array]

_HI = lax.Precision.HIGHEST  # Avoid TF32/bf16 matmuls on accelerators.


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
    x: ``[n, d]`` points (row-sharded when traced under a mesh).
    sq_norms: optional precomputed ``[n]`` squared norms of ``x``.

  Returns:
    A function mapping a scalar row index to ``[n]`` squared distances, O(n·d).
  """
  sq = jnp.sum(x * x, axis=-1) if sq_norms is None else sq_norms

  def dist_to(j: jax.Array) -> jax.Array:
    cross = jnp.matmul(x, _row(x, j), precision=_HI)
    return jnp.maximum(sq + _row(sq, j) - 2.0 * cross, 0.0)

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
    cross = jnp.matmul(a, _row(a, j), precision=_HI) * jnp.matmul(e, _row(e, j), precision=_HI)
    return jnp.maximum(self_sq + _row(self_sq, j) - 2.0 * cross, 0.0)

  return dist_to
