"""Multi-layer perceptron returning ``(logits, embedding)``."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jal.models.layers import Linear

__all__ = ["MLP"]


class MLP(nnx.Module):
  """Flatten → [Linear → ReLU] × L → (dropout) → Linear head.

  Args:
    in_features: flattened input size (``H * W * C``).
    num_classes: number of logits ``K``.
    hidden: widths of the hidden layers; the last one is the embedding size.
    dropout: dropout rate before the head (used for MC-dropout BALD).
    rngs: ``nnx.Rngs`` with a ``params`` stream.

  Example:
    >>> from flax import nnx

    >>> import jax.numpy as jnp
    >>> m = MLP(64, 10, hidden=(32,), rngs=nnx.Rngs(0))
    >>> logits, emb = m(jnp.zeros((2, 8, 8, 1)))
    >>> logits.shape, emb.shape
    ((2, 10), (2, 32))
  """

  def __init__(self, in_features: int, num_classes: int, *,
               hidden: Sequence[int] = (256, 128), dropout: float = 0.0,
               rngs: nnx.Rngs):
    widths = (in_features, *hidden)
    self.layers = nnx.List([Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])])
    self.drop = nnx.Dropout(dropout)
    self.head = Linear(widths[-1], num_classes, rngs=rngs)
    self.embed_dim = widths[-1]
    self.dropout_rate = dropout

  def __call__(self, x: jax.Array, *, train: bool = False, dropout: bool | None = None,
               rngs=None, features: bool = False):
    """Maps ``[n, H, W, C]`` images to logits ``[n, K]`` and embeddings ``[n, D]``.

    ``features=True`` adds a third output, the intermediate features that loss prediction
    reads (``Net.apply_features``): the ReLU output of every hidden layer, ``[n, hidden[i]]``
    each.
    """
    h = jnp.reshape(x, (x.shape[0], -1))
    hidden = []
    for layer in self.layers:
      h = jax.nn.relu(layer(h))
      hidden.append(h)
    on = train if dropout is None else dropout
    logits = self.head(self.drop(h, deterministic=not on, rngs=rngs))
    return (logits, h, tuple(hidden)) if features else (logits, h)
