"""Trace-time taps on jal's layers: each layer's input and the gradient at its output.

Layer-wise per-example gradient norms (``jal.scores.grand``) need, for every parameterised
layer, its input ``a`` and the gradient ``g`` of the loss at its output. jal's layers
(``jal.models.layers``) call ``tap`` on their output; outside a ``recording`` block that is
the identity and costs nothing. Inside one (entered while a function is being traced), ``tap``
records the layer and its input and returns ``output + eps`` with a zero perturbation ``eps``
taken from the recording, so that the gradient with respect to ``eps`` is ``g``.

A recording is used twice: once with ``eps=None`` to discover the layers and their output
shapes (under ``jax.eval_shape``), then with the zero perturbations as traced arguments.
"""

import contextlib
import contextvars
from typing import Any, NamedTuple

import jax

__all__ = ["Tap", "Recording", "is_recording", "recording", "tap"]


class Tap(NamedTuple):
  """One recorded layer call.

  Attributes:
    layer: the NNX layer module (its parameters and settings are read at trace time).
    x: the layer's input.
  """
  layer: Any
  x: jax.Array


class Recording:
  """The layers met while tracing, in call order, and the perturbations to add."""

  def __init__(self, eps: list[jax.Array] | None = None):
    self.eps = eps
    self.taps: list[Tap] = []
    self.out_shapes: list[jax.ShapeDtypeStruct] = []


_ACTIVE: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "jal_taps", default=None)


@contextlib.contextmanager
def recording(eps: list[jax.Array] | None = None):
  """Records every ``tap`` called in the block (``eps``: perturbations, one per tap)."""
  rec = Recording(eps)
  token = _ACTIVE.set(rec)
  try:
    yield rec
  finally:
    _ACTIVE.reset(token)


def is_recording() -> bool:
  """Whether a ``recording`` is active (layers must then run as themselves, one tap each)."""
  return _ACTIVE.get() is not None


def tap(layer: Any, x: jax.Array, out: jax.Array) -> jax.Array:
  """Records ``(layer, x)`` and returns ``out`` (plus its perturbation when recording)."""
  rec = _ACTIVE.get()
  if rec is None:
    return out
  i = len(rec.taps)
  rec.taps.append(Tap(layer, x))
  rec.out_shapes.append(jax.ShapeDtypeStruct(out.shape, out.dtype))
  if rec.eps is None:
    return out
  if i >= len(rec.eps) or rec.eps[i].shape != out.shape:
    raise RuntimeError("the network called its layers in another order or shape than when "
                       "its taps were discovered")
  return out + rec.eps[i]
