"""Per-example squared gradient norms of one layer, from its input and its output gradient.

For a loss summed over independent examples (eval mode: no batch statistics), the gradient
of example ``i``'s loss with respect to a layer's parameters depends only on that example's
layer input ``a_i`` and output gradient ``g_i``:

* dense ``y = a W + b``: ``∇W = a_i ⊗ g_i`` so ``‖∇W‖² = ‖a_i‖²·‖g_i‖²``, ``‖∇b‖² = ‖g_i‖²``
  (sequence inputs as convolution patches below);
* convolution: with ``A_i [P, K]`` the im2col patches and ``G_i [P, O]`` the output gradient
  over the ``P`` output positions, ``∇W = A_iᵀ G_i``; its squared norm is either summed after
  materialising it (``P·K·O`` multiply-adds) or read from the Gram matrices,
  ``⟨A_i A_iᵀ, G_i G_iᵀ⟩`` (``P²·(K + O)``), whichever is cheaper for the shape;
  ``∇b = Σ_p G_i[p]``;
* BatchNorm in eval mode ``y = x̂·γ + β``: ``∇γ = Σ_p g·x̂``, ``∇β = Σ_p g`` per channel.

``payload`` runs while the network is traced (it reads the layer's settings and running
statistics); ``sq_norms`` runs on what it returned and the tap's output gradient.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jal.models import conv

__all__ = ["Payload", "payload", "sq_norms", "gram_is_cheaper"]


class Payload(NamedTuple):
  """What ``sq_norms`` needs of one layer call.

  Attributes:
    kind: ``"conv"``, ``"linear"`` or ``"batchnorm"``.
    static: hashable settings (kernel size, strides, padding, which parameters exist).
    params: number of parameter arrays of the layer that the norm covers.
    array: the layer input (conv, linear) or the normalised input ``x̂`` (BatchNorm).
  """
  kind: str
  static: Any
  params: int
  array: jax.Array


def _pairs(padding, rank: int):
  if isinstance(padding, str):
    return padding
  if isinstance(padding, int):
    return [(padding, padding)] * rank
  return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def _tuple(v, rank: int) -> tuple[int, ...]:
  return (int(v),) * rank if isinstance(v, int) or v is None else tuple(int(s) for s in v)


def payload(layer: Any, x: jax.Array) -> Payload:
  """Describes one recorded layer call (see ``jal.models.taps``).

  Raises:
    NotImplementedError: for layers or settings without a layer-wise form here
      (dilation, feature groups, masks, BatchNorm over other than the last axis).
  """
  if isinstance(layer, nnx.Conv):
    k = tuple(layer.kernel_size)
    if (len(k) != 2 or layer.feature_group_count != 1 or layer.mask is not None
        or _tuple(layer.input_dilation, 2) != (1, 1)
        or _tuple(layer.kernel_dilation, 2) != (1, 1)):
      raise NotImplementedError(f"no layer-wise per-example norm for {layer}")
    pad = _pairs(layer.padding, 2)
    if isinstance(pad, str) and pad not in ("SAME", "VALID"):
      raise NotImplementedError(f"no layer-wise per-example norm for padding {pad!r}")
    has_bias = layer.bias is not None
    static = (k, _tuple(layer.strides, 2), pad if isinstance(pad, str) else tuple(pad),
              has_bias)
    return Payload("conv", static, 1 + has_bias, x)
  if isinstance(layer, nnx.Linear):
    has_bias = layer.bias is not None
    return Payload("linear", has_bias, 1 + has_bias, x)
  if isinstance(layer, nnx.BatchNorm):
    if layer.axis not in (-1, x.ndim - 1):
      raise NotImplementedError("layer-wise BatchNorm norms need axis=-1")
    shape = (1,) * (x.ndim - 1) + (-1,)
    mean, var = layer.mean[...].reshape(shape), layer.var[...].reshape(shape)
    xhat = (x - mean) * jax.lax.rsqrt(var + layer.epsilon)
    static = (bool(layer.use_scale), bool(layer.use_bias))
    return Payload("batchnorm", static, sum(static), xhat)
  raise NotImplementedError(f"no layer-wise per-example norm for {type(layer).__name__}")


def gram_is_cheaper(positions: int, fan_in: int, fan_out: int) -> bool:
  """Gram form ``P²·(K + O)`` cheaper than materialising ``P·K·O``."""
  return positions * (fan_in + fan_out) < fan_in * fan_out


def _patch_norm(a: jax.Array, g: jax.Array) -> jax.Array:
  """``‖A_iᵀ G_i‖²_F`` for ``a [n, P, K]``, ``g [n, P, O]`` → ``[n]``."""
  p, k, o = a.shape[1], a.shape[2], g.shape[2]
  if p == 1:
    return jnp.sum(a[:, 0] ** 2, -1) * jnp.sum(g[:, 0] ** 2, -1)
  if gram_is_cheaper(p, k, o):
    ga = jnp.einsum("npk,nqk->npq", a, a)
    gg = jnp.einsum("npo,nqo->npq", g, g)
    return jnp.sum(ga * gg, axis=(1, 2))
  w = jnp.einsum("npk,npo->nko", a, g)
  return jnp.sum(w * w, axis=(1, 2))


def sq_norms(p: Payload, g: jax.Array) -> jax.Array:
  """Per-example squared gradient norm ``[n]`` of the layer's parameters.

  Args:
    p: the layer's ``payload``.
    g: ``[n, ...]`` gradient of the summed loss at the layer's output.
  """
  n = g.shape[0]
  if p.kind == "conv":
    kernel_hw, strides, padding, has_bias = p.static
    patches = conv.im2col(p.array, kernel_hw, strides, padding)
    a = patches.reshape(n, -1, patches.shape[-1])
    gg = g.reshape(n, -1, g.shape[-1])
    out = _patch_norm(a, gg)
    return out + jnp.sum(jnp.sum(gg, 1) ** 2, -1) if has_bias else out
  if p.kind == "linear":
    a = p.array.reshape(n, -1, p.array.shape[-1])
    gg = g.reshape(n, -1, g.shape[-1])
    out = _patch_norm(a, gg)
    return out + jnp.sum(jnp.sum(gg, 1) ** 2, -1) if p.static else out
  use_scale, use_bias = p.static
  gg = g.reshape(n, -1, g.shape[-1])
  out = jnp.zeros((n,), g.dtype)
  if use_scale:
    out += jnp.sum(jnp.sum(gg * p.array.reshape(gg.shape), 1) ** 2, -1)
  if use_bias:
    out += jnp.sum(jnp.sum(gg, 1) ** 2, -1)
  return out
