"""Fixed-size chunked maps over a pool, so memory stays flat as the pool grows."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["chunked_map"]


def chunked_map(fn: Callable[..., Any], arrays: tuple[jax.Array, ...], chunk_size: int) -> Any:
  """Applies ``fn`` to fixed-size row chunks of ``arrays`` and stitches the results.

  Rows are gathered chunk by chunk inside a ``lax.map``, so only one chunk of inputs and
  intermediates is live at a time; the last chunk repeats the final row and is trimmed.
  Call it inside ``jax.jit``: ``n`` and ``chunk_size`` are static, so one compile serves a
  pool of fixed size.

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
  chunk = max(1, min(int(chunk_size), n))
  n_chunks = -(-n // chunk)
  starts = jnp.arange(n_chunks, dtype=jnp.int32) * chunk

  def one(start):
    idx = jnp.minimum(start + jnp.arange(chunk, dtype=jnp.int32), n - 1)
    return fn(tuple(a[idx] for a in arrays))

  out = jax.lax.map(one, starts)
  return jax.tree.map(lambda o: o.reshape((n_chunks * chunk,) + o.shape[2:])[:n], out)
