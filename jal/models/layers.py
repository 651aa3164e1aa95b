"""jal's layers: flax's ``Conv``, ``Linear`` and ``BatchNorm`` with two additions.

* ``Conv`` lowers through ``jal.models.conv.conv`` (the fastest exact lowering for the layer's
  shape on the current backend);
* every layer reports its input and output to ``jal.models.taps`` (the identity unless a
  recording is active), which layer-wise per-example gradient norms use.

Parameters, their names and their initialisation are flax's, so swapping these in for the
flax layers keeps ``init`` and checkpoints unchanged.
"""

import jax
from flax import nnx

from jal.models import conv, taps

__all__ = ["BatchNorm", "Conv", "Linear", "conv_shapes"]


class Conv(nnx.Conv):
  """``nnx.Conv`` lowered by ``jal.models.conv.conv`` and tapped."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("conv_general_dilated", conv.conv)
    super().__init__(*args, **kwargs)

  def __call__(self, x: jax.Array, **kwargs) -> jax.Array:
    return taps.tap(self, x, super().__call__(x, **kwargs))


class Linear(nnx.Linear):
  """``nnx.Linear``, tapped."""

  def __call__(self, x: jax.Array, **kwargs) -> jax.Array:
    return taps.tap(self, x, super().__call__(x, **kwargs))


class BatchNorm(nnx.BatchNorm):
  """``nnx.BatchNorm``, tapped."""

  def __call__(self, x: jax.Array, use_running_average: bool | None = None,
               **kwargs) -> jax.Array:
    return taps.tap(self, x, super().__call__(x, use_running_average=use_running_average,
                                              **kwargs))


def conv_shapes(net, input_shape) -> list[tuple]:
  """Every convolution ``net`` runs on one ``(H, W, C)`` image, in call order, as
  ``(input (H, W, C), kernel (kh, kw, C, O), strides (sh, sw), padding)`` — the shapes the
  lowering rules and their tests cover. Traced abstractly (nothing is computed)."""
  found = []

  def run():
    with taps.recording() as rec:
      net.apply(net.init(jax.random.key(0)), jax.numpy.zeros((1, *input_shape)))
    for t in rec.taps:
      if isinstance(t.layer, nnx.Conv):
        pad = t.layer.padding
        pad = pad if isinstance(pad, str) else ((pad, pad),) * 2 if isinstance(pad, int) \
            else tuple(tuple(p) for p in pad)
        strides = t.layer.strides
        strides = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
        found.append((tuple(t.x.shape[1:]), tuple(t.layer.kernel.shape), strides, pad))
    return 0

  jax.eval_shape(run)
  return found
