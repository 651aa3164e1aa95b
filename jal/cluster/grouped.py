"""k-means inside every group of a partition, all groups in one Lloyd run.

BRAL-T splits each state cluster ``U_c`` into ``A_c`` actions. Running one masked k-means per
cluster (``lax.map`` over clusters, each pass touching all ``n`` rows) costs ``C`` times the
work and, on XLA:CPU, loop-in-loop overhead. Here the ``G`` independent problems share one
program: centroids are ``[G, k, d]``, each row is compared only with the ``k`` centroids of
its own group, and the seeding draws one k-means++ centre per group per step with the
Gumbel-max trick. One pass over the rows per Lloyd iteration serves every group.

Example:
  >>> import jax, jax.numpy as jnp
  >>> x = jnp.array([[0.], [0.1], [5.], [5.1], [10.], [10.1], [20.], [20.1]])
  >>> g = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
  >>> r = grouped_kmeans(jax.random.key(0), x, g, n_groups=2, k=2)
  >>> bool(r.assignment[0] == r.assignment[1]), bool(r.assignment[0] != r.assignment[2])
  (True, True)
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jal import parallel
from jal.cluster.distances import _HI
from jal.cluster.kmeans import lloyd_loop
from jal.cluster.topk import _place, gather_rows
from jal.parallel.chunking import chunked_map

__all__ = ["GroupedKMeans", "grouped_kmeans"]


class GroupedKMeans(NamedTuple):
  """Output of :func:`grouped_kmeans`.

  Attributes:
    centroids: ``[G, k, d]`` centres (rows of unused centres are zeros).
    centre_ok: ``[G, k]`` bool, centre exists (a group with fewer than ``k`` members has
      fewer centres).
    assignment: ``[n]`` int32 local cluster id in ``[0, k)``; −1 for rows outside every group.
    inertia: ``[G]`` per-group sum of squared distances to the assigned centre.
    n_iter: ``[]`` int32 Lloyd iterations run.
  """
  centroids: jax.Array
  centre_ok: jax.Array
  assignment: jax.Array
  inertia: jax.Array
  n_iter: jax.Array


def _member_matrix(group, n_groups):
  return group[None, :] == jnp.arange(n_groups, dtype=group.dtype)[:, None]  # [G, n]


def _seed(key, x, sq, group, n_groups, k, n_rows):
  """k-means++ seeding in every group at once; returns ``(centroids [G,k,d], ok [G,k])``.

  The Gumbel noise is drawn for the ``n_rows`` real rows (then padded), so padding ``x`` for a
  mesh does not change the draws."""
  member = _member_matrix(group, n_groups)
  gidx = jnp.clip(group, 0, n_groups - 1)
  keys = jax.random.split(key, k)

  def draw(kk, logits):  # [G, n] logits, −inf = not drawable → ([G] index, [G] ok)
    gumbel = jax.random.gumbel(kk, (logits.shape[0], n_rows))
    if n_rows < logits.shape[1]:  # padding rows (never drawable)
      gumbel = jnp.pad(gumbel, ((0, 0), (0, logits.shape[1] - n_rows)))
    s = jnp.where(jnp.isfinite(logits), logits + gumbel, -jnp.inf)
    return jnp.argmax(s, axis=1).astype(jnp.int32), jnp.any(jnp.isfinite(s), axis=1)

  def dist_to(c):  # [G, d] → [n] squared distance of each row to its group's centre
    cr = c[gidx]
    return jnp.maximum(sq - 2.0 * jnp.sum(x * cr, axis=1) + jnp.sum(cr * cr, axis=1), 0.0)

  j, ok = draw(keys[0], jnp.where(member, 0.0, -jnp.inf))
  avail = member & ~(jnp.arange(x.shape[0])[None, :] == j[:, None])
  xj = gather_rows(x, j)
  min_d = dist_to(xj)
  cents = jnp.zeros((n_groups, k, x.shape[1]), x.dtype).at[:, 0].set(xj)
  oks = jnp.zeros((n_groups, k), bool).at[:, 0].set(ok)

  def body(i, carry):
    cents, oks, avail, min_d = carry
    w = jnp.where(avail, min_d[None, :], 0.0)                          # [G, n]
    # A group whose remaining D² are all zero (duplicates) draws uniformly instead.
    w = jnp.where(jnp.sum(w, axis=1, keepdims=True) > 0, w, avail.astype(w.dtype))
    logits = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    j, ok = draw(keys[i], logits)
    c = gather_rows(x, j)
    avail = avail & ~(jnp.arange(x.shape[0])[None, :] == j[:, None])
    mine = ok[gidx] & (group >= 0)
    min_d = jnp.where(mine, jnp.minimum(min_d, dist_to(c)), min_d)
    return cents.at[:, i].set(jnp.where(ok[:, None], c, 0.0)), oks.at[:, i].set(ok), avail, min_d

  cents, oks, _, _ = lax.fori_loop(1, k, body, (cents, oks, avail, min_d))
  return cents, oks


def grouped_kmeans(key: jax.Array, x: jax.Array, group: jax.Array, n_groups: int, k: int,
                   n_iter: int = 50, tol: float = 1e-6, chunk_size: int = 8192, *, mesh=None
                   ) -> GroupedKMeans:
  """``k``-means (k-means++ seeding + Lloyd) inside each of ``n_groups`` groups.

  Row ``i`` belongs to group ``group[i]`` (negative = no group, ignored). Every group is
  clustered independently of the others, but all groups share one Lloyd loop, which stops
  when the relative change of the total inertia is ``≤ tol`` or after ``n_iter``
  iterations. A centre that loses all its members keeps its position. Groups with fewer than
  ``k`` members get as many centres as members (``centre_ok`` marks the others).

  Args:
    key: PRNG key.
    x: ``[n, d]`` points.
    group: ``[n]`` int group ids in ``[0, n_groups)``, negative for excluded rows.
    n_groups: static ``G``.
    k: static clusters per group.
    n_iter: static maximum number of Lloyd iterations.
    tol: relative inertia-change tolerance.
    chunk_size: static rows per assignment chunk (memory ``chunk_size · G · k``).
    mesh: ``None`` (one device, callable inside ``jit``) or a ``jal.parallel`` mesh (rows
      padded, as excluded rows, and split along ``data``; the seeding's Gumbel draws are the
      same as without a mesh).

  Returns:
    :class:`GroupedKMeans`; the global cluster id of row ``i`` is
    ``group[i] * k + assignment[i]`` (``assignment`` is ``[n_pad]``, split along ``data``,
    under a mesh).
  """
  n = x.shape[0]
  if mesh is None:
    return _grouped_kmeans(key, x, group, n_groups, k, n_iter, tol, chunk_size, n)
  xs, gs = _place(mesh, (x, None), (jnp.asarray(group, jnp.int32), -1))
  with parallel.use_mesh(mesh):
    return _grouped_kmeans(key, xs, gs, int(n_groups), int(k), int(n_iter), tol,
                           int(chunk_size), int(n))


@functools.partial(jax.jit,
                   static_argnames=("n_groups", "k", "n_iter", "chunk_size", "n_rows"))
def _grouped_kmeans(key, x, group, n_groups, k, n_iter, tol, chunk_size, n_rows):
  x = parallel.constrain_rows(x)
  group = parallel.constrain_rows(group.astype(jnp.int32))
  inside = group >= 0
  gidx = jnp.clip(group, 0, n_groups - 1)
  w = inside.astype(x.dtype)
  # Centre each group on its own mean (better conditioned matmul distances).
  gsum = jax.ops.segment_sum(x * w[:, None], jnp.where(inside, group, n_groups),
                             num_segments=n_groups + 1)[:n_groups]
  gcnt = jax.ops.segment_sum(w, jnp.where(inside, group, n_groups),
                             num_segments=n_groups + 1)[:n_groups]
  shift = gsum / jnp.maximum(gcnt, 1.0)[:, None]                          # [G, d]
  xc = (x - shift[gidx]) * w[:, None]
  sq = jnp.sum(xc * xc, axis=1)
  cents, ok = _seed(key, xc, sq, group, n_groups, k, n_rows)
  seg = jnp.where(inside, group, n_groups)

  def assign(c):
    c_sq = jnp.sum(c * c, axis=2)                                          # [G, k]

    def rows(chunk):  # only a chunk's [rows, G·k] dot products is live at a time
      xr, sqr, gr = chunk
      # One GEMM against all G·k centres, then each row keeps its own group's k columns.
      dots = jnp.matmul(xr, c.reshape(-1, c.shape[-1]).T, precision=_HI)
      dots = jnp.take_along_axis(dots.reshape(-1, n_groups, k), gr[:, None, None], axis=1)
      d2 = sqr[:, None] - 2.0 * dots[:, 0] + c_sq[gr]
      d2 = jnp.where(ok[gr], jnp.maximum(d2, 0.0), jnp.inf)
      a = jnp.argmin(d2, axis=1).astype(jnp.int32)
      return a, jnp.take_along_axis(d2, a[:, None], axis=1)[:, 0]

    a, dmin = chunked_map(rows, (xc, sq, gidx), chunk_size)
    inertia = jax.ops.segment_sum(jnp.where(inside, dmin, 0.0), seg,
                                  num_segments=n_groups + 1)[:n_groups]
    return a, inertia

  def update(a, c):
    cid = jnp.where(inside, gidx * k + a, n_groups * k)
    sums = jax.ops.segment_sum(xc * w[:, None], cid, num_segments=n_groups * k + 1)
    cnt = jax.ops.segment_sum(w, cid, num_segments=n_groups * k + 1)
    means = (sums[:-1] / jnp.maximum(cnt[:-1], 1.0)[:, None]).reshape(c.shape)
    return parallel.constrain_replicated(
        jnp.where((cnt[:-1] > 0).reshape(n_groups, k)[:, :, None], means, c))

  c, it = lloyd_loop(assign, update, cents, n_iter, tol)
  a, inertia = assign(c)
  c = jnp.where(ok[:, :, None], c + shift[:, None, :], 0.0)
  return GroupedKMeans(c, ok, jnp.where(inside, a, -1), inertia, it)
