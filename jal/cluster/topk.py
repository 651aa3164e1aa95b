"""Top-k of the unlabeled rows, uniform scores, and row access on (possibly) sharded pools.

Every pool-wide function of :mod:`jal.cluster` takes ``mesh=None | Mesh``. ``None`` runs on
one device. With a ``jal.parallel`` mesh the pool-sized inputs (scores ``[n]``, embeddings
``[n, d]``, masks ``[n]``) are padded to a multiple of the device count (padding is never
selectable) and split along ``data``, and one ``jit``'d program runs in which the ``[n]``
vectors (masked scores, min-distances, assignments) never leave their shard. What crosses
devices is small and explicit:

* top-k: each device keeps its local top-``k`` (``[devices, k]``), then one ``top_k`` over the
  ``devices · k`` candidates; ties go to the lowest global index, as on one device.
* a chosen row (k-center, k-means++) is fetched with :func:`gather_rows`: a local gather and
  an all-reduce of ``[m, d]``.

Traced code learns whether it runs sharded from ``jal.parallel.data_size()``, so each
algorithm is written once; without a mesh the sharding helpers are no-ops and the program
is the single-device one. With ``n`` a multiple of the device count the picks equal the
``mesh=None`` ones (same random draws; distances up to float rounding).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jal import parallel

__all__ = ["gather_rows", "top_k_unlabeled", "uniform_scores"]


def gather_rows(x: jax.Array, idx: jax.Array) -> jax.Array:
  """``x[idx]``, also for row-sharded ``x`` without gathering ``x``.

  Without a mesh (``jal.parallel.data_size() == 1``) this is ``x[idx]``. Traced under a mesh,
  each device gathers from its own shard, rows it does not own are zeroed, and a sum over
  devices (an all-reduce of ``[m, ...]``) assembles the result; exact (it adds zeros).

  Args:
    x: ``[n, ...]``, ``n`` a multiple of the ``data`` size.
    idx: ``[m]`` int row indices (replicated).

  Returns:
    ``[m, ...]`` rows, replicated.
  """
  d = parallel.data_size()
  if d == 1:
    return x[idx]
  n_loc = x.shape[0] // d
  x3 = parallel.constrain_rows(x.reshape(d, n_loc, *x.shape[1:]))
  g = x3[:, idx % n_loc]  # [d, m, ...] local gather on every shard
  own = jnp.arange(d)[:, None] == (idx // n_loc)[None, :]
  own = own.reshape(*own.shape, *([1] * (x.ndim - 1)))
  return parallel.constrain_replicated(jnp.sum(jnp.where(own, g, jnp.zeros_like(g)), axis=0))


def _row(x: jax.Array, j: jax.Array) -> jax.Array:
  """``x[j]`` for a scalar index ``j`` (:func:`gather_rows` of one row under a mesh)."""
  return x[j] if parallel.data_size() == 1 else gather_rows(x, j[None])[0]


def _valid_mask(mask: jax.Array | None, n: int) -> jax.Array:
  if mask is None:
    return jnp.ones((n,), dtype=bool)
  return jnp.asarray(mask, dtype=bool)


def _iota(n: int) -> jax.Array | None:
  """Sharded row ids ``[n]`` under a mesh; ``None`` on one device (see :func:`_drop`)."""
  if parallel.data_size() == 1:
    return None
  return parallel.constrain_rows(jnp.arange(n, dtype=jnp.int32))


def _drop(avail: jax.Array, j: jax.Array, iota: jax.Array | None) -> jax.Array:
  """``avail`` ``[n]`` with row ``j`` cleared: a scatter on one device, an elementwise compare
  with the sharded ``iota`` under a mesh (so the vector stays on its shard)."""
  if iota is None:
    return avail.at[j].set(False)
  return parallel.constrain_rows(avail & (iota != j))


def _place(mesh, *arrays_and_fills) -> tuple[jax.Array, ...]:
  """Pads each ``(array, fill)`` to a multiple of the mesh size and splits rows on ``data``."""
  return tuple(parallel.shard_rows(jnp.asarray(a), mesh, fill) for a, fill in arrays_and_fills)


# --------------------------------------------------------------------------------- top-k


def _top_k(scores, labeled, budget):
  masked = jnp.where(labeled, -jnp.inf, scores.astype(jnp.float32))
  d = parallel.data_size()
  if d == 1:
    return lax.top_k(masked, budget)[1]
  n = scores.shape[0]
  masked = parallel.constrain_rows(masked)
  per = parallel.constrain_rows(masked.reshape(d, n // d))
  gid = parallel.constrain_rows(jnp.arange(n, dtype=jnp.int32).reshape(d, n // d))
  # Local top-k of every shard. A row-wise sort (descending score, then ascending index) and
  # not ``lax.top_k``: XLA's SPMD partitioner keeps a batched sort on its shard but gathers
  # the operand of a TopK op onto every device.
  neg, gi = lax.sort((-per, gid), dimension=1, num_keys=2)
  k = min(budget, n // d)
  v, i = parallel.constrain_replicated((-neg[:, :k].reshape(-1), gi[:, :k].reshape(-1)))
  return i[lax.top_k(v, budget)[1]]


_top_k_jit = jax.jit(_top_k, static_argnames=("budget",))


def top_k_unlabeled(scores: jax.Array, labeled: jax.Array, budget: int, *, mesh=None
                    ) -> jax.Array:
  """Indices ``[budget]`` of the highest ``scores`` among unlabeled rows (ties: lower index).

  With ``mesh=None`` this is ``lax.top_k`` of the masked scores and may be called inside
  ``jit`` (``budget`` static). With a mesh, each device takes the top ``budget`` of its shard
  and one ``top_k`` merges the ``devices · budget`` candidates (same result); ``scores`` and
  ``labeled`` may then also come padded (``labeled`` True on the padding).

  Args:
    scores: ``[n]`` scores (higher is picked first).
    labeled: ``[n]`` bool, rows that may not be picked.
    budget: static number of indices.
    mesh: ``None`` (one device) or a ``jal.parallel`` mesh (rows split along ``data``).

  Returns:
    ``[budget]`` int32 row indices, best first.
  """
  if mesh is None:  # one jitted program also when called eagerly (inlined under jit)
    return _top_k_jit(scores, labeled, int(budget))
  s, lab = _place(mesh, (scores, -jnp.inf), (labeled, True))
  with parallel.use_mesh(mesh):
    return _top_k_jit(s, lab, int(budget))


@functools.partial(jax.jit, static_argnames=("n", "n_pad"))
def _uniform_scores(key, n, n_pad):
  return parallel.constrain_rows(parallel.pad_rows(jax.random.uniform(key, (n,)), n_pad, 0.0))


def uniform_scores(key: jax.Array, n: int, *, mesh=None) -> jax.Array:
  """``jax.random.uniform(key, (n,))``; with a mesh padded to ``[n_pad]`` (zeros) and split
  along ``data`` (the first ``n`` draws do not depend on the mesh: partitionable threefry).
  Not for use inside ``jit`` (call ``jax.random.uniform`` there).
  """
  if mesh is None:  # one jitted program (n_pad == n: no padding)
    return _uniform_scores(key, int(n), int(n))
  with parallel.use_mesh(mesh):
    return _uniform_scores(key, int(n), parallel.padded_size(n, mesh.shape[parallel.DATA]))
