"""ResNet-18 with the CIFAR stem, the ImageNet stem and the grayscale 1×1 adapter (SPEC §1.1)."""

import jax
import jax.numpy as jnp
from flax import nnx

from jal.models import conv, taps
from jal.models.layers import BatchNorm, Conv, Linear
from jal.models.pool import max_pool

__all__ = ["ResNet18", "STEMS"]

STEMS = ("cifar", "cifar_pool", "imagenet")

# PyTorch's BatchNorm momentum 0.1 is flax's momentum 0.9.
_BN = dict(momentum=0.9, epsilon=1e-5)


class _Block(nnx.Module):
  """Basic residual block: 3×3 conv-BN-ReLU, 3×3 conv-BN, shortcut (1×1 conv-BN if needed)."""

  def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
    self.conv1 = Conv(cin, cout, (3, 3), strides=stride, padding=1, use_bias=False, rngs=rngs)
    self.bn1 = BatchNorm(cout, **_BN, rngs=rngs)
    self.conv2 = Conv(cout, cout, (3, 3), padding=1, use_bias=False, rngs=rngs)
    self.bn2 = BatchNorm(cout, **_BN, rngs=rngs)
    self.proj = stride != 1 or cin != cout
    if self.proj:
      self.sc_conv = Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs)
      self.sc_bn = BatchNorm(cout, **_BN, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ura = not train
    h = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=ura))
    h = self.bn2(self.conv2(h), use_running_average=ura)
    sc = self.sc_bn(self.sc_conv(x), use_running_average=ura) if self.proj else x
    return jax.nn.relu(h + sc)


class ResNet18(nnx.Module):
  """ResNet-18 (2-2-2-2 basic blocks) returning logits and the 8·width-d pooled embedding.

  Args:
    in_channels: image channels; 1 inserts the 1×1 conv 1→3 adapter (DeepAL+ ``MNIST_Net``).
    num_classes: number of logits ``K``.
    stem: ``"cifar"`` (3×3 conv, stride 1, no max-pool), ``"cifar_pool"`` (3×3/1 conv that
      keeps the 3×3/2 max-pool: DeepAL+'s ``CIFAR10_Net``, BASELINES.md §0.4) or
      ``"imagenet"`` (7×7/2 conv + 3×3/2 max-pool).
    width: channels of the first stage (64 = the standard ResNet-18, 512-d embedding).
    dropout: dropout rate before the head (MC-dropout BALD).
    rngs: ``nnx.Rngs`` with a ``params`` stream.

  Example:
    >>> from flax import nnx

    >>> import jax.numpy as jnp
    >>> m = ResNet18(1, 10, width=8, rngs=nnx.Rngs(0))
    >>> [a.shape for a in m(jnp.zeros((2, 28, 28, 1)))]
    [(2, 10), (2, 64)]
  """

  def __init__(self, in_channels: int, num_classes: int, *, stem: str = "cifar",
               width: int = 64, dropout: float = 0.0, rngs: nnx.Rngs):
    if stem not in STEMS:
      raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    self.stem = stem
    self.gray = in_channels == 1
    if self.gray:
      self.adapter = Conv(1, 3, (1, 1), rngs=rngs)
      in_channels = 3
    if stem in ("cifar", "cifar_pool"):
      self.conv1 = Conv(in_channels, width, (3, 3), padding=1, use_bias=False, rngs=rngs)
    else:
      self.conv1 = Conv(in_channels, width, (7, 7), strides=2, padding=3, use_bias=False,
                        rngs=rngs)
    self.bn1 = BatchNorm(width, **_BN, rngs=rngs)
    blocks, cin = [], width
    for stage, mult in enumerate((1, 2, 4, 8)):
      cout = width * mult
      for i in range(2):
        blocks.append(_Block(cin, cout, 2 if (stage > 0 and i == 0) else 1, rngs=rngs))
        cin = cout
    self.blocks = nnx.List(blocks)
    self.drop = nnx.Dropout(dropout)
    self.head = Linear(cin, num_classes, rngs=rngs)
    self.embed_dim = cin
    self.dropout_rate = dropout

  def __call__(self, x: jax.Array, *, train: bool = False, dropout: bool | None = None,
               rngs=None, features: bool = False):
    """Maps ``[n, H, W, C]`` images to logits ``[n, K]`` and embeddings ``[n, 8·width]``.

    ``features=True`` adds a third output, the intermediate features that loss prediction
    reads (``Net.apply_features``): the outputs of the four stages (layer1..layer4),
    ``[n, h_k, w_k, width·2^k]``.
    """
    if not self.gray:
      h = self.conv1(x)
    elif taps.is_recording():  # layer-wise per-example gradients read both layers' taps
      h = self.conv1(self.adapter(x))
    else:
      h = _gray_stem(self.adapter, self.conv1, x)
    h = jax.nn.relu(self.bn1(h, use_running_average=not train))
    if self.stem != "cifar":
      h = max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    stages = []
    for i, block in enumerate(self.blocks):
      h = block(h, train)
      if i % 2 == 1:  # two blocks per stage
        stages.append(h)
    emb = jnp.mean(h, axis=(1, 2))
    on = train if dropout is None else dropout
    logits = self.head(self.drop(emb, deterministic=not on, rngs=rngs))
    return (logits, emb, tuple(stages)) if features else (logits, emb)


def _gray_stem(adapter: Conv, stem: Conv, x: jax.Array) -> jax.Array:
  """``stem(adapter(x))`` for ``x [n, H, W, 1]`` as one convolution on the single channel.

  Both layers are linear, so the stem's kernel ``[kh, kw, 3, O]`` contracted with the 1×1
  adapter's ``[3]`` weights is a ``[kh, kw, 1, O]`` kernel; the adapter's bias, which the
  stem's zero padding does not see at the borders, becomes the stem applied to one constant
  image ``[1, H, W, 3]`` (a ``[1, Ho, Wo, O]`` offset). Exact up to float rounding, with a
  third of the stem's multiply-adds (BUILD_NOTES.md, session 18); gradients reach both
  layers' parameters through the contraction.
  """
  w = stem.kernel[...]
  pad = stem.padding
  pad = ((pad, pad),) * 2 if isinstance(pad, int) else pad
  strides = stem.strides
  strides = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
  dn = ("NHWC", "HWIO", "NHWC")
  folded = jnp.einsum("c,hwco->hwo", adapter.kernel[...][0, 0, 0], w)[:, :, None, :]
  offset = jnp.broadcast_to(adapter.bias[...], (1, *x.shape[1:3], w.shape[2]))
  return (conv.conv(x, folded, strides, pad, dimension_numbers=dn)
          + conv.conv(offset, w, strides, pad, dimension_numbers=dn))
