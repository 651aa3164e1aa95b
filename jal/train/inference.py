"""Pool-wide inference in fixed-size chunks: ``predict`` and ``accuracy``."""

import jax
import jax.numpy as jnp

from jal import parallel
from jal.models.net import Net, Variables
from jal.parallel.chunking import chunked_map

__all__ = ["predict", "accuracy", "predict_jit"]


def _predict(net: Net, variables: Variables, x: jax.Array, chunk_size: int):
  def fn(chunk):
    logits, emb, _ = net.apply(variables, chunk[0], train=False)
    return logits, emb
  return chunked_map(fn, (x,), chunk_size)


predict_jit = jax.jit(_predict, static_argnums=(0, 3))


def predict(net: Net, variables: Variables, x: jax.Array, chunk_size: int = 1024, *,
            mesh=None):
  """Logits ``[n, K]`` and embeddings ``[n, D]`` of a pool, in fixed-size chunks (eval mode).

  With a ``mesh``, the variables are replicated, each device maps its own rows in chunks of
  ``chunk_size`` and both outputs come back split along ``data`` (``n`` a multiple of the
  device count; otherwise the pool is padded inside and the outputs trimmed to ``[n]``).
  """
  if mesh is None:
    return predict_jit(net, variables, x, int(chunk_size))
  with parallel.use_mesh(mesh):
    return predict_jit(net, parallel.replicate(variables, mesh), x, int(chunk_size))


def accuracy(net: Net, variables: Variables, x: jax.Array, y: jax.Array,
             chunk_size: int = 1024) -> float:
  """Top-1 accuracy of the model on ``(x [n, ...], y [n])``."""
  logits, _ = predict(net, variables, x, chunk_size)
  return float(jnp.mean(jnp.argmax(logits, -1) == y))
