"""``jal.models.pool.max_pool`` against ``nnx.max_pool`` (select-and-scatter) and a NumPy loop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jal.models import pool

# (input shape, window, strides, padding): ResNet's stem pools (DeepAL+'s CIFAR net at 32×32,
# the ImageNet stem at 14×14), LeNet's 2×2/2, and odd sizes with string paddings.
CASES = [((1, 32, 32, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),
         ((2, 14, 14, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),
         ((2, 24, 24, 3), (2, 2), (2, 2), "VALID"),
         ((2, 7, 9, 2), (3, 2), (2, 1), "SAME"),
         ((1, 5, 6, 3), (2, 3), None, "VALID")]


def _tied(shape, seed=0):
  """Post-ReLU values (many exact zeros) with exact positive ties forced inside windows."""
  x = np.maximum(np.random.default_rng(seed).standard_normal(shape), 0).astype(np.float32)
  x[:, 1::3, :, :] = x[:, 0:-1:3, :, :][:, :x[:, 1::3].shape[1]]
  x[:, :, 2::4, :] = x[:, :, 1:-1:4, :][:, :, :x[:, :, 2::4].shape[2]]
  return jnp.asarray(x)


def _loop_grad(x, window, strides, padding, g):
  """Gradient of the window maxima by a loop: each window's cotangent goes to its first
  maximal position, row-major."""
  x = np.asarray(x, np.float64)
  strides = strides or (1, 1)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
  (pt, pb), (pl, pr) = padding
  xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
  dx = np.zeros_like(xp)
  n, ho, wo, c = g.shape
  for b, i, j, ch in itertools.product(range(n), range(ho), range(wo), range(c)):
    win = xp[b, i * strides[0]:i * strides[0] + window[0],
             j * strides[1]:j * strides[1] + window[1], ch]
    a, bb = np.unravel_index(np.argmax(win), win.shape)  # argmax: the first maximum
    dx[b, i * strides[0] + a, j * strides[1] + bb, ch] += g[b, i, j, ch]
  return dx[:, pt:pt + x.shape[1], pl:pl + x.shape[2]]


@pytest.mark.parametrize("shape, window, strides, padding", CASES)
def test_max_pool_and_its_gradient_match_select_and_scatter_and_a_loop(shape, window, strides,
                                                                        padding):
  x = _tied(shape)
  mine = lambda v: pool.max_pool(v, window, strides, padding)
  ref = lambda v: nnx.max_pool(v, window, strides, padding)
  y, y_ref = mine(x), ref(x)
  np.testing.assert_array_equal(y, y_ref)
  g = jax.random.normal(jax.random.key(1), y.shape)
  t = jax.random.normal(jax.random.key(2), x.shape)
  # One compiled program per side: gradient, and forward mode (a custom_jvp) too.
  both = lambda f: jax.jit(lambda x, g, t: (jax.vjp(f, x)[1](g)[0], jax.jvp(f, (x,), (t,))[1]))
  (grad, tangent), (grad_ref, tangent_ref) = both(mine)(x, g, t), both(ref)(x, g, t)
  np.testing.assert_allclose(grad, grad_ref, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, _loop_grad(x, window, strides, padding, np.asarray(g)),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(tangent, tangent_ref, rtol=1e-6, atol=1e-6)


def test_non_overlapping_windows_give_a_bit_identical_gradient():
  """LeNet's 2×2/2 pool: its training programs and goldens stay bit-identical."""
  x = _tied((4, 24, 24, 6))
  g = jax.random.normal(jax.random.key(3), (4, 12, 12, 6))
  grad = lambda f: jax.vjp(lambda v: f(v, (2, 2), (2, 2)), x)[1](g)[0]
  np.testing.assert_array_equal(grad(pool.max_pool), grad(nnx.max_pool))


def test_other_backends_keep_flax_max_pool(monkeypatch):
  x = _tied((1, 6, 6, 2))
  jaxpr = lambda: str(jax.make_jaxpr(  # a new function each time: no cached trace
      lambda v: pool.max_pool(v, (3, 3), (2, 2), ((1, 1), (1, 1))))(x))
  assert "custom_jvp_call" in jaxpr()
  monkeypatch.setattr(pool.jax, "default_backend", lambda: "gpu")
  assert "custom_jvp_call" not in jaxpr()
