"""Fixed-size chunked maps over a pool, so memory stays flat as the pool grows."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jal.parallel import mesh as placement

__all__ = ["chunked_map"]


def chunked_map(fn: Callable[..., Any], arrays: tuple[jax.Array, ...], chunk_size: int) -> Any:
  """Applies ``fn`` to fixed-size row chunks of ``arrays`` and stitches the results.

  Rows are gathered chunk by chunk inside a ``lax.map``, so only one chunk of inputs and
  intermediates is live at a time; the last chunk repeats the final row and is trimmed.
  Call it inside ``jax.jit``: ``n`` and ``chunk_size`` are static, so one compile serves a
  pool of fixed size.

  Traced under a mesh with a ``data`` axis of ``D > 1`` devices (``jax.set_mesh``, see
  ``jal.parallel``), the rows are split into ``D`` contiguous shards and every device maps
  ``fn`` over ``chunk_size``-row chunks of its own shard at once: ``D · chunk_size`` rows per
  step, the results sharded along ``data``, no row crossing devices.

  Args:
    fn: maps a tuple of ``[chunk, ...]`` arrays to a pytree of ``[chunk, ...]`` arrays.
    arrays: arrays sharing the leading dimension ``n``.
    chunk_size: rows per chunk.

  Returns:
    The pytree of ``[n, ...]`` results.

  Example:
    >>> import jax.numpy as jnp
    >>> chunked_map(lambda a: a[0] * 2, (jnp.arange(5.0),), 2)
    Array([0., 2., 4., 6., 8.], dtype=float32)
  """
  n = arrays[0].shape[0]
  if n == 0:
    spec = jax.eval_shape(fn, tuple(jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype)
                                    for a in arrays))
    return jax.tree.map(lambda s: jnp.zeros((0, *s.shape[1:]), s.dtype), spec)
  if placement.data_size() > 1:
    return _sharded_chunked_map(fn, arrays, int(chunk_size), placement.data_size())
  chunk = max(1, min(int(chunk_size), n))
  n_chunks = -(-n // chunk)
  starts = jnp.arange(n_chunks, dtype=jnp.int32) * chunk

  def one(start):
    idx = jnp.minimum(start + jnp.arange(chunk, dtype=jnp.int32), n - 1)
    return fn(tuple(a[idx] for a in arrays))

  out = jax.lax.map(one, starts)
  return jax.tree.map(lambda o: o.reshape((n_chunks * chunk,) + o.shape[2:])[:n], out)


def _sharded_chunked_map(fn, arrays, chunk_size, d):
  """``chunked_map`` with rows split over ``d`` devices; each maps its own shard in chunks."""
  n = arrays[0].shape[0]
  n_local = -(-n // d)
  chunk = max(1, min(chunk_size, n_local))
  n_chunks = -(-n_local // chunk)
  width = n_chunks * chunk

  def prep(a):
    a = placement.constrain_rows(placement.pad_rows(a, d * n_local))
    a = a.reshape(d, n_local, *a.shape[1:])
    if width > n_local:  # Each shard repeats its own last row (local, then trimmed).
      a = jnp.concatenate([a, jnp.repeat(a[:, -1:], width - n_local, axis=1)], axis=1)
    return placement.constrain_rows(a.reshape(d, n_chunks, chunk, *a.shape[2:]))

  blocks = tuple(prep(a) for a in arrays)

  def one(c):
    rows = tuple(placement.constrain_rows(b[:, c].reshape(d * chunk, *b.shape[3:]))
                 for b in blocks)
    out = fn(rows)
    return jax.tree.map(lambda o: placement.constrain_rows(o.reshape(d, chunk, *o.shape[1:])), out)

  out = jax.lax.map(one, jnp.arange(n_chunks, dtype=jnp.int32))  # [n_chunks, d, chunk, ...]

  def stitch(o):
    o = jnp.moveaxis(o, 0, 1).reshape(d, width, *o.shape[3:])[:, :n_local]
    o = placement.constrain_rows(o.reshape(d * n_local, *o.shape[2:]))
    return o[:n]

  return jax.tree.map(stitch, out)
