"""jal.models.conv_transpose: the sub-pixel (phase) form of an input-dilated convolution equals
lax.conv_general_dilated with lhs_dilation, in value and both gradients; conv() routes to it."""

import jax
import numpy as np
import pytest
from jax import lax

from jal.models import conv, conv_transpose

DN = ("NHWC", "HWIO", "NHWC")
# (x shape, kernel, padding of the dilated input, dilation): VAAL's small-VAE decoder layers
# (PyTorch ConvTranspose2d(4, 2, 1) and its output_padding = 1 form), odd sizes, paddings
# larger and smaller than k − 1, dilation 3, a kernel smaller than the dilation.
# The two general cases compile ~10 s each: slow suite.
_SLOW = pytest.mark.slow
CASES = [
    ((2, 7, 7, 8), (4, 4, 8, 5), ((2, 2), (2, 2)), (2, 2)),
    ((2, 14, 14, 4), (4, 4, 4, 3), ((2, 3), (2, 3)), (2, 2)),
    pytest.param((1, 5, 6, 3), (3, 3, 3, 2), ((0, 1), (2, 0)), (2, 2), marks=_SLOW),
    pytest.param((1, 4, 4, 2), (5, 5, 2, 2), ((4, 4), (1, 3)), (3, 3), marks=_SLOW),
    ((1, 4, 4, 2), (2, 2, 2, 2), ((0, 0), (0, 0)), (3, 2)),
]


def _reference(x, w, padding, dilation):
  return lax.conv_general_dilated(x, w, (1, 1), padding, lhs_dilation=dilation,
                                  dimension_numbers=DN)


@pytest.mark.parametrize("xs,ws,padding,dilation", CASES)
def test_subpixel_equals_the_dilated_convolution(xs, ws, padding, dilation):
  rng = np.random.default_rng(0)
  x = rng.standard_normal(xs).astype(np.float32)
  w = rng.standard_normal(ws).astype(np.float32)
  y_ref, vjp_ref = jax.vjp(lambda x, w: _reference(x, w, padding, dilation), x, w)
  fn = lambda x, w: conv_transpose.subpixel_conv(x, w, padding, dilation, conv.conv)
  y, vjp = jax.vjp(fn, x, w)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  ct = rng.standard_normal(y.shape).astype(np.float32)
  for got, want in zip(vjp(ct), vjp_ref(ct)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=5e-5)


def test_phase_plan_counts_cover_the_output():
  # Every output position belongs to exactly one phase, and each phase's convolution of the
  # padded input has exactly that phase's number of outputs.
  for n, k, s, lo, hi in [(7, 4, 2, 2, 2), (14, 4, 2, 2, 3), (4, 5, 3, 4, 4), (4, 2, 3, 0, 0)]:
    size = (n - 1) * s + 1 + lo + hi - k + 1
    counts = []
    for a, (_, taps, pad_lo, pad_hi) in enumerate(conv_transpose.phase_plan(n, k, s, lo, hi)):
      count = len(range(a, size, s))
      if taps:
        assert n + pad_lo + pad_hi - taps + 1 == count
      counts.append(count)
    assert sum(counts) == size


def test_conv_routes_input_dilation_to_the_phases_on_cpu(monkeypatch):
  calls = []
  real = conv_transpose.subpixel_conv
  monkeypatch.setattr(conv_transpose, "subpixel_conv",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  x, w = np.ones((1, 3, 3, 2), np.float32), np.ones((4, 4, 2, 1), np.float32)
  y = conv.conv(x, w, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2), dimension_numbers=DN)
  assert calls == ([1] if jax.default_backend() == "cpu" else [])
  np.testing.assert_allclose(y, _reference(x, w, ((2, 2), (2, 2)), (2, 2)), rtol=1e-6)
