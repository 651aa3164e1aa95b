"""LeNet-5 as used by DISTIL / RAMBO (SPEC §2.1), returning ``(logits, embedding)``."""

import jax
import jax.numpy as jnp
from flax import nnx

from jal.models.layers import Conv, Linear
from jal.models.pool import max_pool

__all__ = ["LeNet5"]


def _pool(x: jax.Array) -> jax.Array:
  return max_pool(x, window_shape=(2, 2), strides=(2, 2))


class LeNet5(nnx.Module):
  """conv6(5×5) → pool → conv16(5×5) → pool → fc120 → fc84 → head, ReLU activations.

  For 28×28 inputs the convolutions are 'VALID' (16·4·4 = 256 flattened features, as in
  DISTIL). Inputs smaller than 20 pixels (e.g. the 8×8 digits) use 'SAME' padding so the
  feature maps do not vanish. The embedding is the 84-d penultimate activation.

  Args:
    input_shape: ``(H, W, C)`` of one image.
    num_classes: number of logits ``K``.
    dropout: dropout rate before the head (for MC-dropout BALD); 0 = DISTIL's LeNet.
    rngs: ``nnx.Rngs`` with a ``params`` stream.

  Example:
    >>> from flax import nnx

    >>> import jax.numpy as jnp
    >>> m = LeNet5((28, 28, 1), 10, rngs=nnx.Rngs(0))
    >>> [a.shape for a in m(jnp.zeros((3, 28, 28, 1)))]
    [(3, 10), (3, 84)]
  """

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               dropout: float = 0.0, rngs: nnx.Rngs):
    h, w, c = input_shape
    pad = "VALID" if min(h, w) >= 20 else "SAME"
    self.conv1 = Conv(c, 6, (5, 5), padding=pad, rngs=rngs)
    self.conv2 = Conv(6, 16, (5, 5), padding=pad, rngs=rngs)
    shrink = 4 if pad == "VALID" else 0
    h1, w1 = (h - shrink) // 2, (w - shrink) // 2
    h2, w2 = (h1 - shrink) // 2, (w1 - shrink) // 2
    if h2 < 1 or w2 < 1:
      raise ValueError(f"LeNet5 needs larger images than {input_shape}")
    self.fc1 = Linear(16 * h2 * w2, 120, rngs=rngs)
    self.fc2 = Linear(120, 84, rngs=rngs)
    self.drop = nnx.Dropout(dropout)
    self.head = Linear(84, num_classes, rngs=rngs)
    self.embed_dim = 84
    self.dropout_rate = dropout

  def __call__(self, x: jax.Array, *, train: bool = False, dropout: bool | None = None,
               rngs=None, features: bool = False):
    """Maps ``[n, H, W, C]`` images to logits ``[n, K]`` and embeddings ``[n, 84]``.

    ``features=True`` adds a third output, the intermediate features that loss prediction
    reads (``Net.apply_features``): ``pool(ReLU(conv1))`` ``[n, h1, w1, 6]``,
    ``pool(ReLU(conv2))`` ``[n, h2, w2, 16]``, ``ReLU(fc1)`` ``[n, 120]`` and ``ReLU(fc2)``
    ``[n, 84]`` (BASELINES.md §1.2's choice).
    """
    t1 = _pool(jax.nn.relu(self.conv1(x)))
    t2 = _pool(jax.nn.relu(self.conv2(t1)))
    h = jnp.reshape(t2, (t2.shape[0], -1))
    t3 = jax.nn.relu(self.fc1(h))
    h = jax.nn.relu(self.fc2(t3))
    on = train if dropout is None else dropout
    logits = self.head(self.drop(h, deterministic=not on, rngs=rngs))
    return (logits, h, (t1, t2, t3, h)) if features else (logits, h)
