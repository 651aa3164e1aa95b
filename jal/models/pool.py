"""Max pooling with a gradient XLA:CPU runs several times faster than its own.

``nnx.max_pool`` is ``lax.reduce_window``, whose gradient XLA lowers to select-and-scatter:
on CPU that takes 0.24 s for ResNet's 3×3/2 stem pool at batch 128 on 32×32×64 maps, about a
seventh of a training step of DeepAL+'s CIFAR net (BUILD_NOTES.md, session 17). ``max_pool``
keeps the forward and defines the derivative itself: the tangent of each window's maximum is
the tangent at its first maximal position (row-major in the window, as select-and-scatter and
PyTorch pick it), so the gradient is select-and-scatter's, up to the order in which
overlapping windows' contributions are summed. It is a ``custom_jvp``: forward-mode
derivatives work as before.
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jal.models.conv import window_slices

__all__ = ["max_pool"]


def max_pool(x: jax.Array, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding="VALID") -> jax.Array:
  """``nnx.max_pool`` on ``x [n, H, W, C]`` (2-D windows), with the fast derivative on CPU.

  Args:
    x: ``[n, H, W, C]`` inputs.
    window_shape: ``(kh, kw)``.
    strides: ``(sh, sw)``; ones by default, as ``nnx.max_pool``'s.
    padding: ``'VALID'``, ``'SAME'`` or ``((pt, pb), (pl, pr))``; padded positions never win.

  Returns:
    ``[n, Ho, Wo, C]`` window maxima.
  """
  window = tuple(int(k) for k in window_shape)
  strides = (1,) * len(window) if strides is None else tuple(int(s) for s in strides)
  if x.ndim != 4 or len(window) != 2 or jax.default_backend() != "cpu":
    return nnx.max_pool(x, window, strides, padding)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  return _max_pool(x, window, strides, padding)


def _reduce(x, window, strides, padding):
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1),
                           ((0, 0), *padding, (0, 0)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, padding):
  return _reduce(x, window, strides, padding)


@_max_pool.defjvp
def _max_pool_jvp(window, strides, padding, primals, tangents):
  (x,), (t,) = primals, tangents
  y = _reduce(x, window, strides, padding)
  taken = jnp.zeros(y.shape, bool)
  firsts = []
  for xk in window_slices(x, window, strides, padding, -jnp.inf):
    firsts.append((xk == y) & ~taken)
    taken = taken | firsts[-1]
  dy = sum(jnp.where(m, tk, jnp.zeros((), t.dtype))
           for m, tk in zip(firsts, window_slices(t, window, strides, padding)))
  return y, dy
