"""Greedy k-center selection (CoreSet, Sener & Savarese 2018), on one device or a mesh."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jal import parallel
from jal.cluster.distances import _HI, pairwise_sq_dists
from jal.cluster.topk import _drop, _iota, _place, _row, _uniform_scores, gather_rows

__all__ = ["kcenter_greedy"]


def _centre(x, avail):
  """``x`` minus the mean of the available rows."""
  wa = avail.astype(x.dtype)
  return x - (jnp.matmul(wa, x, precision=_HI) / jnp.maximum(jnp.sum(wa), 1.0))[None, :]


@functools.partial(jax.jit, static_argnames=("budget", "chunk", "centre"))
def _kcenter(x, avail, lab_idx, lab_valid, start_scores, budget, chunk, centre):
  """Greedy k-center on ``x`` (centred here when ``centre``) given a padded list of labeled
  rows; under a mesh the ``[n]`` vectors stay sharded and rows come by :func:`gather_rows`."""
  n = x.shape[0]
  x, avail = parallel.constrain_rows(x), parallel.constrain_rows(avail)
  xc = parallel.constrain_rows(_centre(x, avail)) if centre else x
  sq = jnp.sum(xc * xc, axis=-1)

  def scan_chunk(min_d, chunk_in):
    idx, ok = chunk_in
    d = pairwise_sq_dists(xc, gather_rows(xc, idx), x_sq=sq, y_sq=gather_rows(sq, idx))
    d = jnp.where(ok[None, :], d, jnp.inf)  # [n, chunk]
    return parallel.constrain_rows(jnp.minimum(min_d, jnp.min(d, axis=1))), None

  min_d = parallel.constrain_rows(jnp.full((n,), jnp.inf, x.dtype))
  min_d, _ = lax.scan(scan_chunk, min_d, (lab_idx.reshape(-1, chunk),
                                          lab_valid.reshape(-1, chunk)))
  iota = _iota(n)

  def dist_to(j):
    diff = xc - _row(xc, j)[None, :]
    return jnp.sum(diff * diff, axis=-1)

  def pick(min_d, avail):
    return jnp.argmax(jnp.where(avail, min_d, -jnp.inf)).astype(jnp.int32)

  first = pick(jnp.where(jnp.any(lab_valid), min_d, start_scores), avail)
  out = jnp.zeros((budget,), jnp.int32).at[0].set(first)

  def body(i, carry):  # cover the previous pick, then take the farthest available row
    out, avail, min_d = carry
    j = out[i - 1]
    avail, min_d = _drop(avail, j, iota), jnp.minimum(min_d, dist_to(j))
    return out.at[i].set(pick(min_d, avail)), avail, min_d

  out, _, _ = lax.fori_loop(1, budget, body, (out, avail, min_d))
  return out


@jax.jit
def _centred_norms(x, avail):
  xc = _centre(x, avail)
  return parallel.constrain_rows(jnp.sum(xc * xc, axis=-1))


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
  mesh=None,
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
  ``budget`` is validated. Under tracing (inside ``jax.jit``, ``mesh=None`` only)
  all rows are scanned with the mask applied and ``budget`` is not checked.

  With a mesh the rows are split along ``data``: the labeled rows are fetched chunk by chunk
  with :func:`jal.cluster.gather_rows` (``[n / devices, chunk]`` per device), and each greedy
  step costs ``O(n·d / devices)`` per device plus an all-reduce of one ``[d]`` row and the
  argmax.

  Args:
    x: ``[n, d]`` points.
    budget: number of points to select (Python int).
    labeled_mask: ``[n]`` bool, True for already-labeled rows.
    candidate_mask: optional ``[n]`` bool of selectable rows (default all);
      labeled rows are never selected.
    key: optional PRNG key for the first pick when nothing is labeled.
    chunk_size: rows of the labeled set processed per scan step.
    mesh: ``None`` (one device) or a ``jal.parallel`` mesh (masks must be concrete).

  Returns:
    ``[budget]`` int32 unique indices of unlabeled candidates, in pick order.

  Raises:
    ValueError: on shape mismatch, traced masks with a mesh, or if ``budget`` exceeds the
      number of unlabeled candidates.
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
  if mesh is not None and (lab_np is None or avail_np is None):
    raise ValueError("kcenter_greedy with a mesh needs concrete masks (call it outside jit)")
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
  chunk = min(int(chunk_size), 1 << (n_lab - 1).bit_length())
  n_pad = -(-n_lab // chunk) * chunk
  if idx is not None:
    lab_valid = jnp.asarray(np.arange(n_pad) < idx.size)
    lab_idx = jnp.asarray(np.pad(idx, (0, n_pad - idx.size)))
  else:
    lab_idx = jnp.arange(n_pad, dtype=jnp.int32) % n
    lab_valid = jnp.pad(labeled, (0, n_pad - n))

  if mesh is None:  # centred here, outside the loop's program
    xc = _centre(x, avail)
    if key is None:
      start_scores = jnp.sum(xc * xc, axis=-1)
    else:
      start_scores = jax.random.uniform(key, (n,), x.dtype)
    return _kcenter(xc, avail, lab_idx, lab_valid, start_scores, budget, chunk, False)
  xs, av = _place(mesh, (x, None), (avail, False))
  with parallel.use_mesh(mesh):
    if key is None:  # First pick without labels: farthest from the candidates' mean.
      start = _centred_norms(xs, av)
    else:
      start = _uniform_scores(key, n, xs.shape[0])
    return _kcenter(xs, av, lab_idx, lab_valid, start, budget, chunk, True)
