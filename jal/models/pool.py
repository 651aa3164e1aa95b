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


def _windows(x, window, strides, padding, fill, out_hw):
  """The ``kh·kw`` strided slices of the padded ``x``, one per window position, each
  ``[n, Ho, Wo, C]``, row-major."""
  xp = lax.pad(x, jnp.asarray(fill, x.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in padding),
                                              (0, 0, 0)))
  (sh, sw), (ho, wo) = strides, out_hw
  return [lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + (ho - 1) * sh + 1,
                                        j + (wo - 1) * sw + 1, xp.shape[3]), (1, sh, sw, 1))
          for i in range(window[0]) for j in range(window[1])]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, padding):
  return _reduce(x, window, strides, padding)


@_max_pool.defjvp
def _max_pool_jvp(window, strides, padding, primals, tangents):
  (x,), (t,) = primals, tangents
  y = _reduce(x, window, strides, padding)
  out_hw = y.shape[1:3]
  taken = jnp.zeros(y.shape, bool)
  firsts = []
  for xk in _windows(x, window, strides, padding, -jnp.inf, out_hw):
    firsts.append((xk == y) & ~taken)
    taken = taken | firsts[-1]
  dy = sum(jnp.where(m, tk, jnp.zeros((), t.dtype))
           for m, tk in zip(firsts, _windows(t, window, strides, padding, 0, out_hw)))
  return y, dy
