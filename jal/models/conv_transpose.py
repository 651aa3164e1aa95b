"""Input-dilated (transposed) convolutions as ``s²`` small convolutions and an interleave.

A transposed convolution with stride ``s`` is a stride-1 convolution of the input dilated by
``s`` (``s − 1`` zeros between pixels), so ``(s² − 1)/s²`` of XLA's multiply-adds hit zeros,
and XLA:CPU runs ``lhs_dilation`` convolutions slowly besides (VAAL's VAE: the two 4×4/2
transposed convolutions took 0.78 of 1.23 s of a training step, BUILD_NOTES.md). Output
position ``o = s·q + a`` only meets kernel taps ``t ≡ lo − a (mod s)``, so each output phase
``(a, b)`` is an ordinary stride-1 convolution of the undilated input with the sub-kernel
``w[t₀::s, t₀'::s]`` (the "sub-pixel" decomposition); the ``s²`` phase outputs are then
interleaved. Exact: the same products are summed, only their order differs.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["phase_plan", "subpixel_conv"]


def phase_plan(n: int, k: int, stride: int, lo: int, hi: int
               ) -> list[tuple[int, int, int, int]]:
  """Per output phase ``a`` of one axis: ``(t0, taps, pad_lo, pad_hi)``.

  The dilated-and-padded axis has ``(n − 1)·s + 1 + lo + hi`` positions and the output
  ``L = that − k + 1``; phase ``a`` holds outputs ``a, a + s, …`` (``⌈(L − a)/s⌉`` of them),
  each ``Σ_m w[t0 + s·m] · x[q + c + m]`` over ``taps`` values of ``m``, i.e. a stride-1
  valid convolution of ``x`` padded by ``(pad_lo, pad_hi)`` (negative: cropped).
  """
  size = (n - 1) * stride + 1 + lo + hi - k + 1
  plan = []
  for a in range(stride):
    t0 = (lo - a) % stride
    taps = max(0, -(-(k - t0) // stride))
    c = (a + t0 - lo) // stride
    count = max(0, -(-(size - a) // stride))
    pad_lo = -c
    pad_hi = count + taps - 1 - n - pad_lo
    plan.append((t0, taps, pad_lo, pad_hi))
  return plan


def subpixel_conv(x: jax.Array, kernel: jax.Array, padding: Sequence[tuple[int, int]],
                  dilation: Sequence[int], conv: Callable, precision=None) -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, (1, 1), padding, lhs_dilation=dilation)`` for
  NHWC ``x [n, H, W, C]`` and HWIO ``kernel [kh, kw, C, O]``, by phases.

  Args:
    x: ``[n, H, W, C]``.
    kernel: ``[kh, kw, C, O]``.
    padding: ``((lo, hi), (lo, hi))`` of the dilated input (non-negative).
    dilation: ``(sh, sw)`` input dilation.
    conv: the stride-1 convolution each phase runs, with ``lax.conv_general_dilated``'s
      signature (NHWC / HWIO dimension numbers are passed).
    precision: passed to ``conv``.

  Returns:
    ``[n, L_h, L_w, O]``.
  """
  (kh, kw, _, cout), (n, h, w, _) = kernel.shape, x.shape
  plans = [phase_plan(size, k, s, lo, hi)
           for size, k, s, (lo, hi) in zip((h, w), (kh, kw), dilation, padding)]
  out_hw = [(size - 1) * s + 1 + lo + hi - k + 1
            for size, k, s, (lo, hi) in zip((h, w), (kh, kw), dilation, padding)]
  rows_per = [-(-length // s) for length, s in zip(out_hw, dilation)]
  rows = []
  for a, (ta, ka, la, ha) in enumerate(plans[0]):
    cols = []
    for b, (tb, kb, lb, hb) in enumerate(plans[1]):
      count = (max(0, -(-(out_hw[0] - a) // dilation[0])),
               max(0, -(-(out_hw[1] - b) // dilation[1])))
      if ka == 0 or kb == 0 or 0 in count:
        y = jnp.zeros((n, *count, cout), x.dtype)
      else:
        sub = kernel[ta::dilation[0], tb::dilation[1]]
        xp = lax.pad(x, jnp.zeros((), x.dtype),
                     ((0, 0, 0), (la, ha, 0), (lb, hb, 0), (0, 0, 0)))
        y = conv(xp, sub, (1, 1), "VALID", precision=precision,
                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
      # Every phase padded to the same count so that they interleave by a reshape.
      y = jnp.pad(y, ((0, 0), (0, rows_per[0] - count[0]), (0, rows_per[1] - count[1]),
                      (0, 0)))
      cols.append(y)
    rows.append(jnp.stack(cols, axis=3))  # [n, Rh, Rw, sw, O]
  full = jnp.stack(rows, axis=2)  # [n, Rh, sh, Rw, sw, O]
  full = full.reshape(n, rows_per[0] * dilation[0], rows_per[1] * dilation[1], cout)
  return full[:, :out_hw[0], :out_hw[1]]
