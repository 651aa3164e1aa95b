"""Deep Sets utility model of RAMBO (App. A): ψ per element, masked mean, φ, score and OT heads.

The NNX module is split once; ``SetNet`` holds the static graph and pure functions over the
parameter pytree. Sets are either padded batches ``[B, S, ...]`` with a mask ``[B, S]`` or
masks ``[B, n]`` over one shared pool ``[n, ...]`` (ψ then runs once per pool element, which is
how RAMBO's subsets of S₀ are scored cheaply). Mean pooling is additive, so sets that differ by
a few elements can also be scored from running sums (``head_from_sum``).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["SetOutput", "SetNet", "SetModel", "make_set_net", "masked_mean"]


class SetOutput(NamedTuple):
  """Heads of the utility model for a batch of ``B`` sets."""
  score: jax.Array  # [B] RankNet logit s(ξ) (or the regression utility û for "RankNet ×")
  ot: jax.Array     # [B] predicted OT distance ÔT(ξ)
  phi: jax.Array    # [B, 32] set embedding φ(ξ)


class _CNN(nnx.Module):
  """ψ for 28×28×1 images (SPEC §2.1 REC, the PyTorch MNIST net with conv2 implied)."""

  def __init__(self, input_shape, out: int, dropout: float, rngs: nnx.Rngs):
    h, w, c = input_shape
    self.conv1 = nnx.Conv(c, 10, (5, 5), padding="VALID", rngs=rngs)
    self.conv2 = nnx.Conv(10, 20, (5, 5), padding="VALID", rngs=rngs)
    h2, w2 = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    self.fc1 = nnx.Linear(20 * h2 * w2, 50, rngs=rngs)
    self.fc2 = nnx.Linear(50, out, rngs=rngs)
    self.drop2d = nnx.Dropout(dropout, broadcast_dims=(1, 2))
    self.drop = nnx.Dropout(dropout)

  def __call__(self, x, deterministic, rngs):
    pool = lambda t: nnx.max_pool(t, (2, 2), strides=(2, 2))
    h = jax.nn.relu(pool(self.conv1(x)))
    h = self.drop2d(self.conv2(h), deterministic=deterministic, rngs=rngs)
    h = jax.nn.relu(pool(h))
    h = jax.nn.relu(self.fc1(jnp.reshape(h, (h.shape[0], -1))))
    h = self.drop(h, deterministic=deterministic, rngs=rngs)
    return jax.nn.relu(self.fc2(h))


class _MLP(nnx.Module):
  """ψ for small images or frozen embeddings: flatten → FC → ReLU → FC → ReLU (App. A.2)."""

  def __init__(self, in_features: int, out: int, hidden: int, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(in_features, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, out, rngs=rngs)

  def __call__(self, x, deterministic, rngs):
    del deterministic, rngs
    h = jax.nn.relu(self.fc1(jnp.reshape(x, (x.shape[0], -1))))
    return jax.nn.relu(self.fc2(h))


class SetModel(nnx.Module):
  """ψ extractor, set head (64 → 64 → 32 = φ), score head φ → 1 and OT head 32 → 32 → 1.

  Args:
    element_shape: shape of one set element, e.g. ``(28, 28, 1)`` or ``(D,)``.
    extractor: ``"cnn"`` (needs images of at least 20×20), ``"mlp"`` or ``"auto"``.
    width: ψ output width (64).
    phi_dim: φ width (32).
    dropout: dropout rate inside the CNN extractor (0 keeps the model deterministic).
    rngs: ``nnx.Rngs`` with a ``params`` stream.
  """

  def __init__(self, element_shape, *, extractor: str = "auto", width: int = 64,
               phi_dim: int = 32, dropout: float = 0.0, rngs: nnx.Rngs):
    element_shape = tuple(int(s) for s in element_shape)
    if extractor == "auto":
      big = len(element_shape) == 3 and min(element_shape[:2]) >= 20
      extractor = "cnn" if big else "mlp"
    if extractor == "cnn":
      self.psi = _CNN(element_shape, width, dropout, rngs)
    elif extractor == "mlp":
      size = 1
      for s in element_shape:
        size *= s
      self.psi = _MLP(size, width, width, rngs)
    else:
      raise ValueError(f"extractor must be 'cnn', 'mlp' or 'auto', got {extractor!r}")
    self.set1 = nnx.Linear(width, width, rngs=rngs)
    self.set2 = nnx.Linear(width, phi_dim, rngs=rngs)
    self.score_head = nnx.Linear(phi_dim, 1, rngs=rngs)
    self.ot1 = nnx.Linear(phi_dim, phi_dim, rngs=rngs)
    self.ot2 = nnx.Linear(phi_dim, 1, rngs=rngs)

  def elements(self, x, key=None):
    """ψ of ``[n, ...]`` elements → ``[n, width]`` (dropout only when ``key`` is given)."""
    rngs = nnx.Rngs(dropout=key) if key is not None else None
    return self.psi(x, key is None, rngs)

  def head(self, pooled):
    """Heads of ``[B, width]`` pooled features."""
    phi = self.set2(jax.nn.relu(self.set1(pooled)))
    score = self.score_head(phi)[:, 0]
    ot = self.ot2(jax.nn.relu(self.ot1(phi)))[:, 0]
    return SetOutput(score, ot, phi)


def masked_mean(h: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of ``h [..., S, E]`` over the rows where ``mask [..., S]`` is True → ``[..., E]``."""
  m = mask.astype(h.dtype)[..., None]
  total = jnp.sum(jnp.where(m > 0, h, 0.0), axis=-2)
  return total / jnp.maximum(jnp.sum(m, axis=-2), 1.0)


class SetNet(NamedTuple):
  """Static utility network plus pure functions of its parameter pytree.

  Attributes:
    graphdef: NNX graph definition of ``SetModel``.
    init: ``key -> params``.
    width: ψ width.
  """
  graphdef: Any
  init: Callable[[jax.Array], Any]
  width: int

  def _model(self, params):
    return nnx.merge(self.graphdef, params)

  def elements(self, params, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """ψ of ``[n, ...]`` elements → ``[n, width]``."""
    return self._model(params).elements(x, key)

  def head(self, params, pooled: jax.Array) -> SetOutput:
    """Heads of mean-pooled features ``[B, width]``."""
    return self._model(params).head(pooled)

  def head_from_sum(self, params, total: jax.Array, count: jax.Array) -> SetOutput:
    """Heads of sets given ``Σψ [B, width]`` and their sizes ``[B]``."""
    return self.head(params, total / jnp.maximum(count, 1.0)[:, None])

  def apply(self, params, x: jax.Array, mask: jax.Array,
            key: jax.Array | None = None) -> SetOutput:
    """Padded sets ``x [B, S, ...]`` with ``mask [B, S]`` → ``SetOutput``."""
    b, s = mask.shape
    h = self.elements(params, jnp.reshape(x, (b * s, *x.shape[2:])), key)
    return self.head(params, masked_mean(jnp.reshape(h, (b, s, -1)), mask))

  def apply_masks(self, params, pool: jax.Array, masks: jax.Array,
                  key: jax.Array | None = None) -> SetOutput:
    """Sets given as ``masks [B, n]`` over a shared ``pool [n, ...]`` (ψ runs once)."""
    h = self.elements(params, pool, key)
    m = masks.astype(h.dtype)
    pooled = (m @ h) / jnp.maximum(jnp.sum(m, -1), 1.0)[:, None]
    return self.head(params, pooled)

  def __hash__(self):
    return hash(self.graphdef)

  def __eq__(self, other):
    return isinstance(other, SetNet) and self.graphdef == other.graphdef


def make_set_net(element_shape, **kwargs) -> SetNet:
  """Builds the static ``SetNet`` for elements of ``element_shape``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> sn = make_set_net((8, 8, 1))
    >>> p = sn.init(jax.random.key(0))
    >>> sn.apply(p, jnp.zeros((2, 5, 8, 8, 1)), jnp.ones((2, 5), bool)).score.shape
    (2,)
  """
  abstract = nnx.eval_shape(lambda: SetModel(element_shape, rngs=nnx.Rngs(0), **kwargs))
  graphdef, _ = nnx.split(abstract)

  def init(key: jax.Array):
    _, params = nnx.split(SetModel(element_shape, rngs=nnx.Rngs(params=key), **kwargs))
    return params

  return SetNet(graphdef, init, int(kwargs.get("width", 64)))
