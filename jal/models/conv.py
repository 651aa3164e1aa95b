"""Convolution lowerings chosen by shape: XLA's convolution or shifted slices and one matmul.

XLA:CPU runs small-spatial, many-channel convolutions far below the machine's matmul speed
(ResNet-18 stage 3 at 2×2×256: ~7 GFLOP/s against ~280 for a float32 matmul, BUILD_NOTES.md
"ResNet-18 at PyTorch speed"), while the same convolution written as ``kh·kw`` shifted,
strided slices concatenated on channels (an im2col built from slices) and one matrix product
runs at matmul speed; on maps of ≤ 2×2 positions one matmul with the convolution unrolled into a
dense matrix wins (padding taps dropped). ``conv`` is a drop-in for ``lax.conv_general_dilated``
(NHWC inputs, HWIO kernels, the form flax's ``Conv`` calls) that picks the forward and the
backward lowering per layer shape and backend from measured rules (``lowerings``); all are
exact, only the float rounding order differs.
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jal.models import conv_transpose

__all__ = ["BLOCK_BYTES", "LOWERINGS", "conv", "conv_dense", "conv_rows", "conv_rows_blocked",
           "conv_slices", "conv_slices_blocked", "dense_kernel", "im2col", "lowering", "lowerings",
           "resolve_padding", "rows_block", "slices_block", "window_slices"]

LOWERINGS = ("xla", "slices", "slices_blocked", "rows", "rows_blocked", "dense")
# Working set of one block of the blocked lowerings: the patches and the output.
BLOCK_BYTES = 8 << 20


def resolve_padding(padding, in_hw: Sequence[int], kernel_hw: Sequence[int],
                    strides: Sequence[int]) -> list[tuple[int, int]]:
  """Explicit ``[(lo, hi), (lo, hi)]`` padding of the two spatial axes (``'SAME'``,
  ``'VALID'`` or pairs, as ``lax.conv_general_dilated`` takes them)."""
  if isinstance(padding, str):
    return [tuple(p) for p in lax.padtype_to_pads(tuple(in_hw), tuple(kernel_hw),
                                                  tuple(strides), padding)]
  return [(int(lo), int(hi)) for lo, hi in padding]


def window_slices(x: jax.Array, kernel_hw: Sequence[int], strides: Sequence[int],
                  padding, fill: float = 0.0) -> list[jax.Array]:
  """The ``kh·kw`` strided slices of ``x [n, H, W, C]`` padded with ``fill``, one per window
  position ``(i, j)`` in row-major order, each ``[n, Ho, Wo, C]``: slice ``(i, j)`` holds, at
  output ``(p, q)``, the input at window offset ``(i, j)`` of that output's window."""
  kh, kw = kernel_hw
  sh, sw = strides
  pads = resolve_padding(padding, x.shape[1:3], kernel_hw, strides)
  if any(lo or hi for lo, hi in pads):
    x = lax.pad(x, jnp.asarray(fill, x.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads),
                                                (0, 0, 0)))
  ho = (x.shape[1] - kh) // sh + 1
  wo = (x.shape[2] - kw) // sw + 1
  return [lax.slice(x, (0, i, j, 0), (x.shape[0], i + (ho - 1) * sh + 1,
                                      j + (wo - 1) * sw + 1, x.shape[3]), (1, sh, sw, 1))
          for i in range(kh) for j in range(kw)]


def im2col(x: jax.Array, kernel_hw: Sequence[int], strides: Sequence[int],
           padding) -> jax.Array:
  """Patches of ``x [n, H, W, C]`` for a ``kh×kw`` window: ``[n, Ho, Wo, kh·kw·C]``.

  ``window_slices`` of the zero-padded input concatenated on channels, ordered ``(i, j, c)``
  so that ``patches @ kernel.reshape(kh·kw·C, O)`` is the convolution.
  """
  cols = window_slices(x, kernel_hw, strides, padding)
  return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def conv_slices(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding,
                precision=None) -> jax.Array:
  """``x [n, H, W, C]`` ⋆ ``kernel [kh, kw, C, O]`` as im2col by slices and one matmul."""
  kh, kw, c, o = kernel.shape
  patches = im2col(x, (kh, kw), strides, padding)
  n, ho, wo, k = patches.shape
  out = jnp.dot(patches.reshape(n * ho * wo, k), kernel.reshape(kh * kw * c, o),
                precision=precision)
  return out.reshape(n, ho, wo, o)


def conv_rows(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding,
              precision=None) -> jax.Array:
  """``x [n, H, W, C]`` ⋆ ``kernel [kh, kw, C, O]`` at stride 1, im2col on one axis only.

  The ``kw`` horizontal shifts of ``x`` are concatenated on channels (``[n, H, Wo, kw·C]``,
  ``kw``× the input instead of im2col's ``kh·kw``×), one matmul against the kernel laid out
  ``[kw·C, kh·O]`` gives every vertical tap's contribution ``z [n, H, Wo, kh, O]``, and the
  ``kh`` taps are summed from row-shifted slices of ``z`` (one fused pass). The products are
  the convolution's, summed in another order. Negative padding crops, as in ``lax``.
  """
  if any(int(s) != 1 for s in strides):
    raise ValueError(f"conv_rows needs unit strides, got {tuple(strides)}")
  kh, kw, c, o = kernel.shape
  n, h, w, _ = x.shape
  (pt, pb), (pl, pr) = resolve_padding(padding, (h, w), (kh, kw), strides)
  zero = jnp.zeros((), x.dtype)
  xp = lax.pad(x, zero, ((0, 0, 0), (0, 0, 0), (pl, pr, 0), (0, 0, 0)))
  wo = xp.shape[2] - kw + 1
  ho = h + pt + pb - kh + 1
  cols = xp if kw == 1 else jnp.concatenate([xp[:, :, j:j + wo] for j in range(kw)], axis=-1)
  taps = kernel.transpose(1, 2, 0, 3).reshape(kw * c, kh * o)
  z = jnp.dot(cols.reshape(n * h * wo, kw * c), taps, precision=precision)
  z = lax.pad(z.reshape(n, h, wo, kh, o), zero,
              ((0, 0, 0), (pt, pb, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)))
  return sum(z[:, i:i + ho, :, i, :] for i in range(kh))


def _batch_block(n: int, per_image: int, budget: int | None) -> int:
  """Images per block, at most ``cap = budget // per_image`` (default ``BLOCK_BYTES``): the
  largest divisor of ``n`` when one is at least ``cap / 2`` (no padding), else equal blocks
  over ``⌈n / cap⌉`` (fewer than one block of padding)."""
  cap = int(min(n, max(1, (BLOCK_BYTES if budget is None else budget) // per_image)))
  divisor = max(d for d in range(1, cap + 1) if n % d == 0)
  if 2 * divisor >= cap:
    return divisor
  return -(-n // -(-n // cap))


def rows_block(in_shape: Sequence[int], kernel_shape: Sequence[int],
               budget: int | None = None) -> int:
  """Images per block of ``conv_rows_blocked``: as many as keep the block's one-axis patches
  and tap outputs (float32) within ``budget`` bytes (default ``BLOCK_BYTES``)."""
  n, h, w, _ = in_shape
  kh, kw, c, o = kernel_shape
  return _batch_block(n, 4 * h * w * (kw * c + kh * o), budget)


def slices_block(in_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int],
                 budget: int | None = None) -> int:
  """Images per block of ``conv_slices_blocked``: as many as keep the block's patches and
  output (float32) within ``budget`` bytes (default ``BLOCK_BYTES``)."""
  n, h, w, _ = in_shape
  kh, kw, c, o = kernel_shape
  positions = -(-h // strides[0]) * -(-w // strides[1])
  return _batch_block(n, 4 * positions * (kh * kw * c + o), budget)


def _over_blocks(fn, block: int, x, kernel, strides, padding, precision):
  """``fn`` over blocks of ``block`` images (``lax.map``; a batch that is not a multiple is
  padded with zero images, cut off after). Each block is rematerialised (``jax.checkpoint``):
  derivatives rebuild the block's patches in cache instead of saving every block's for the
  backward pass (kernel gradient 1.2–1.4× faster, session 17)."""
  n = x.shape[0]
  if block >= n:
    return fn(x, kernel, strides, padding, precision)
  blocks = -(-n // block)
  if blocks * block != n:
    x = jnp.pad(x, ((0, blocks * block - n), (0, 0), (0, 0), (0, 0)))
  block_conv = jax.checkpoint(lambda xb, k: fn(xb, k, strides, padding, precision))
  y = lax.map(lambda xb: block_conv(xb, kernel), x.reshape(blocks, block, *x.shape[1:]))
  return y.reshape(blocks * block, *y.shape[2:])[:n]


def conv_rows_blocked(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding,
                      precision=None) -> jax.Array:
  """``conv_rows`` over blocks of ``rows_block`` images, so that each block's patches stay
  in cache: on this 2-core VM a pass over memory runs at 3–6 GB/s, and the blocked form runs
  1.3–2× the unblocked one on maps of 7×7 and more (BUILD_NOTES.md)."""
  return _over_blocks(conv_rows, rows_block(x.shape, kernel.shape), x, kernel, strides,
                      padding, precision)


def conv_slices_blocked(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding,
                        precision=None) -> jax.Array:
  """``conv_slices`` over blocks of ``slices_block`` images: at batch 1,024 the strided
  convolutions' patches leave the cache (7×7×64 → 128 at stride 2: 114–121 GFLOP/s blocked,
  45–51 unblocked, XLA's 64–69; session 17)."""
  return _over_blocks(conv_slices, slices_block(x.shape, kernel.shape, strides), x, kernel,
                      strides, padding, precision)


def _taps_1d(size: int, out: int, k: int, stride: int, lo: int) -> np.ndarray:
  """``[size, out, k]`` 0/1: input ``a`` feeds output ``b`` through kernel tap ``i``."""
  sel = np.zeros((size, out, k), np.float32)
  for b in range(out):
    for i in range(k):
      a = b * stride + i - lo
      if 0 <= a < size:
        sel[a, b, i] = 1.0
  return sel


def dense_kernel(kernel: jax.Array, in_hw: Sequence[int], strides: Sequence[int],
                 padding) -> jax.Array:
  """The convolution of an ``H×W`` map as one ``[H·W·C, Ho·Wo·O]`` matrix.

  Entry ``((h, w, c), (ho, wo, o))`` is ``kernel[h − ho·s + lo, w − wo·s + lo', c, o]`` where
  that tap exists, else 0: padding taps are dropped exactly, not multiplied by zeros.
  """
  kh, kw, c, o = kernel.shape
  (pt, pb), (pl, pr) = resolve_padding(padding, in_hw, (kh, kw), strides)
  h, w = in_hw
  ho = (h + pt + pb - kh) // strides[0] + 1
  wo = (w + pl + pr - kw) // strides[1] + 1
  rows = jnp.asarray(_taps_1d(h, ho, kh, strides[0], pt))
  cols = jnp.asarray(_taps_1d(w, wo, kw, strides[1], pl))
  big = jnp.einsum("hai,wbj,ijco->hwcabo", rows, cols, kernel)
  return big.reshape(h * w * c, ho * wo * o)


def conv_dense(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding,
               precision=None) -> jax.Array:
  """``x [n, H, W, C]`` ⋆ ``kernel`` as one matmul with ``dense_kernel`` (tiny maps only:
  the matrix has ``H·W·C × Ho·Wo·O`` entries)."""
  n, h, w, c = x.shape
  big = dense_kernel(kernel, (h, w), strides, padding)
  out = jnp.dot(x.reshape(n, h * w * c), big, precision=precision)
  ho, wo = _out_hw((h, w), kernel.shape[:2], strides, padding)
  return out.reshape(n, ho, wo, kernel.shape[-1])


def _out_hw(in_hw, kernel_hw, strides, padding) -> tuple[int, int]:
  pads = resolve_padding(padding, in_hw, kernel_hw, strides)
  return tuple((s + lo + hi - k) // st + 1
               for s, (lo, hi), k, st in zip(in_hw, pads, kernel_hw, strides))


def lowerings(in_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int],
              backend: str | None = None) -> tuple[str, str, str]:
  """The lowerings ``conv`` uses for an NHWC input ``in_shape`` and an HWIO ``kernel_shape``:
  ``(forward, input gradient, kernel gradient)``.

  Rules read off ``python -m experiments.bench.convs`` and the split timings in BUILD_NOTES.md
  ("ResNet-18 at PyTorch speed"), XLA:CPU: forward at batch 1,024, XLA's convolution wins on
  maps of 7×7 and more at stride 1, the sliced matmul on 1×1 kernels and on strided
  convolutions with ≥ 128 input channels, the dense matmul on maps of ≤ 2×2 (padding taps
  dropped). At batch 128, XLA's input gradient is as fast as its forward pass on maps of
  16×16 and more, while its kernel gradient runs 3–7× slower than the sliced matmul's
  (``patchesᵀ @ g``) everywhere; at stride 1 the one-axis im2col (``conv_rows``) beats both
  on the kernel gradient (session 16's split timings). 5×5 kernels (LeNet-5) stay on XLA
  so that LeNet's results stay bit-identical. Other backends keep their native convolution.
  """
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return "xla", "xla", "xla"
  _, h, w, _ = in_shape
  kh, kw, cin, cout = kernel_shape
  if (kh, kw) == (5, 5):
    return "xla", "xla", "xla"
  if kh == kw == 1:
    return "slices", "slices", "slices"
  strided = any(s > 1 for s in strides)
  if h * w <= 4:
    back = "dense" if h * w == 1 else "slices"
    # The dense matrix (H·W·C × Ho·Wo·O) pays off over large batches only: at 2×2 stride 1,
    # batch 128, the one-axis im2col runs 107–117 GFLOP/s against dense's 46–64 (1,024:
    # dense 238–313 against 88–113; session 17).
    small = in_shape[0] < 512 and h * w > 1 and not strided
    return ("rows" if small else "dense"), back, back
  if not strided and (kh, kw) == (3, 3) and cin >= 16 and cout >= 8:
    # ResNet's 3×3 stride-1 convolutions, with channels enough for the one-axis im2col's
    # matmul (K = kw·C): blocked over the batch so its patches stay in cache. Session 16's
    # split timings, GFLOP/s, blocked vs the old pick: forward 76 vs 43 at 7×7×64, 70 vs 53
    # at 32×32×64, 100 vs 80 at 8×8×256; XLA's forward stays on 4×4 maps below 256 channels
    # (93 vs 78). XLA's input gradient holds on 16×16 maps (106 vs 80 at 128 channels; with
    # the blocks rematerialised, whole training steps were no faster blocked, session 17),
    # the sliced one on 4×4 maps.
    forward = "xla" if h * w <= 16 and cin < 256 else "rows_blocked"
    if 256 <= h * w < 1024:
      input_grad = "xla"
    else:
      input_grad = "rows_blocked" if h * w >= 49 else "slices"
    kernel_grad = "rows_blocked" if h * w >= 64 else "rows"
    return forward, input_grad, kernel_grad
  forward = "slices" if (strided and cin >= 128) or cin >= 512 else "xla"
  if strided and in_shape[0] >= 512 and cin >= 3:
    # Large (inference) batches: the sliced matmul in cached blocks (session 17, batch 1,024:
    # 7×7×64 → 128 114–121 GFLOP/s vs XLA's 64–69; the 7×7/2 stem on 28×28×3 58–68 vs 46–48).
    # On one input channel (the grayscale stem with its adapter folded in) XLA's stays:
    # 64–76 ms vs 84–100 at 28×28×1 → 14×14×64 /2, batch 1,024 (session 18).
    forward = "slices_blocked"
  # patchesᵀ·g with a handful of output columns is bound by writing the patches (VAE's
  # 29×29×32 → 1 output layer: 319 vs 27 ms for XLA's, BUILD_NOTES.md). At stride 1 the
  # one-axis im2col writes a third of them (1.2–1.5× the sliced matmul on ResNet's shapes).
  if cout < 8:
    kernel_grad = "xla"
  elif not strided and cin >= 16:
    kernel_grad = "rows"
  else:
    kernel_grad = "slices"
  # XLA's input gradient holds up on maps of 16×16 and more only at stride 1 (strided:
  # 0.7–0.85× the sliced matmul's, session 16's split timings).
  input_grad = "xla" if h * w >= 256 and not strided else "slices"
  return forward, input_grad, kernel_grad


def lowering(in_shape: Sequence[int], kernel_shape: Sequence[int], strides: Sequence[int],
             backend: str | None = None) -> str:
  """The forward lowering of ``lowerings``."""
  return lowerings(in_shape, kernel_shape, strides, backend)[0]


def _run(how, x, w, strides, padding, precision):
  if how == "xla":
    return lax.conv_general_dilated(x, w, strides, padding, precision=precision,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return _BY_NAME[how](x, w, strides, padding, precision)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5))
def _split_conv(x, w, strides, padding, precision, how):
  """The convolution computed by ``how[0]``, differentiated through ``how[1]`` (in ``x``)
  and ``how[2]`` (in ``w``); gradients are the transposes of those JVPs."""
  return _run(how[0], x, w, strides, padding, precision)


def _split_conv_jvp(strides, padding, precision, how, primals, tangents):
  x, w = primals
  dx, dw = tangents
  y = _run(how[0], x, w, strides, padding, precision)
  parts = []
  if not isinstance(dx, SymbolicZero):
    parts.append(_run(how[1], dx, w, strides, padding, precision))
  if not isinstance(dw, SymbolicZero):
    parts.append(_run(how[2], x, dw, strides, padding, precision))
  return y, sum(parts[1:], parts[0]) if parts else jnp.zeros_like(y)


_split_conv.defjvp(_split_conv_jvp, symbolic_zeros=True)


def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
         dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """``lax.conv_general_dilated`` for NHWC/HWIO with the lowerings ``lowerings`` picks.

  The forward pass runs the forward lowering; derivatives (JVP, and so gradients by its
  transpose) run the input- and kernel-gradient ones. On CPU an input-dilated
  (transposed) convolution runs as its stride-1 phase convolutions, each through ``conv``
  (``conv_transpose.subpixel_conv``). Anything else the lowerings do not cover (kernel
  dilation, groups, other layouts, extra keyword arguments) goes to
  ``lax.conv_general_dilated``.
  """
  lhs_dilated = any(d != 1 for d in (lhs_dilation or ()))
  rhs_dilated = any(d != 1 for d in (rhs_dilation or ()))
  plain = (lhs.ndim == 4 and feature_group_count == 1 and not rhs_dilated and
           not any(v is not None for v in kwargs.values()) and _is_nhwc(dimension_numbers))
  if (plain and lhs_dilated and jax.default_backend() == "cpu" and not isinstance(padding, str)
      and all(int(s) == 1 for s in window_strides) and min(min(p) for p in padding) >= 0):
    # Transposed convolutions: s² stride-1 phase convolutions (jal.models.conv_transpose).
    return conv_transpose.subpixel_conv(lhs, rhs, tuple((int(lo), int(hi)) for lo, hi in padding),
                                        tuple(int(d) for d in lhs_dilation), conv, precision)
  plain = plain and not lhs_dilated
  how = lowerings(lhs.shape, rhs.shape, window_strides) if plain else ("xla",) * 3
  if how == ("xla",) * 3:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    precision=precision, **kwargs)
  if not isinstance(padding, str):
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  strides = tuple(int(s) for s in window_strides)
  if len(set(how)) == 1:
    return _BY_NAME[how[0]](lhs, rhs, strides, padding, precision)
  return _split_conv(lhs, rhs, strides, padding, precision, how)


def _is_nhwc(dn) -> bool:
  if dn is None:
    return False
  if isinstance(dn, lax.ConvDimensionNumbers):
    return dn == lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1),
                                            ("NHWC", "HWIO", "NHWC"))
  return tuple(dn) == ("NHWC", "HWIO", "NHWC")


_BY_NAME = {"slices": conv_slices, "slices_blocked": conv_slices_blocked, "rows": conv_rows,
            "rows_blocked": conv_rows_blocked, "dense": conv_dense}
