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

__all__ = ["BatchNorm", "Conv", "Linear"]


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
