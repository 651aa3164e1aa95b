"""VAAL's variational autoencoders (BASELINES.md §3.2) and their functional face.

* ``"small"``: DeepAL+'s ``VAE_MNIST`` (no BatchNorm), generalised to ``c`` channels and any
  ``H, W`` divisible by 4 (28×28 → flatten 64·7·7 = 3,136; 8×8 digits → 64·2·2).
* ``"conv32"``: the VAAL authors' ``VAE`` (= DeepAL+ ``VAE_CIFAR10``) for 32×32×c inputs:
  4 × [Conv 4×4/2 → BN → ReLU] (128…1024 channels), a 32-d latent, 3 × [ConvTranspose 4×4/2 →
  BN → ReLU] and a 1×1 ConvTranspose (≈ 23M parameters).

Initialisation: Kaiming-normal (fan-in, gain √2, zero bias) on the convolutions and linear
layers that the references initialise so (those inside ``nn.Sequential``); flax's defaults on
the stand-alone μ / log σ² layers and the transposed convolutions (PyTorch's defaults there).
Transposed convolutions use PyTorch's geometry: ``out = (in − 1)·s − 2p + k + output_padding``.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jal.models import conv as conv_lib
from jal.models.net import Variables

__all__ = ["conv2d", "TorchConv", "SmallVAE", "Conv32VAE", "VAE_KINDS", "VaeNet", "make_vae",
           "vae_kind"]

VAE_KINDS = ("small", "conv32")
_KAIMING = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
_LECUN = nnx.initializers.lecun_normal()  # flax's default
_BN = dict(momentum=0.9, epsilon=1e-5)  # PyTorch's BatchNorm defaults


def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding, dilation: int = 1
           ) -> jax.Array:
  """``x [n, H, W, C]`` ⋆ ``kernel [k, k, C, O]`` with explicit ``padding`` pairs and input
  dilation ``dilation`` (transposed convolutions), through ``jal.models.conv.conv``.

  On XLA:CPU, XLA's input-dilated convolutions are slow; ``conv`` runs a transposed one as
  its ``s²`` stride-1 phase convolutions (3–4× faster on this VAE's decoder layers,
  BUILD_NOTES.md); accelerators keep their native convolution.
  """
  return conv_lib.conv(x, kernel, (stride, stride), padding,
                       lhs_dilation=(dilation, dilation),
                       dimension_numbers=("NHWC", "HWIO", "NHWC"))


class TorchConv(nnx.Module):
  """``Conv2d(cin, cout, k, s, p)`` or, with ``transpose``, PyTorch's
  ``ConvTranspose2d(cin, cout, k, s, p, output_padding)`` (as a convolution of the input
  dilated by ``s``, padded by ``k − 1 − p`` and ``k − 1 − p + output_padding``)."""

  def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, *,
               transpose: bool = False, output_padding: int = 0, use_bias: bool = True,
               kernel_init=_LECUN, rngs: nnx.Rngs):
    self.kernel = nnx.Param(kernel_init(rngs.params(), (k, k, cin, cout)))
    self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None
    if transpose:
      lo = k - 1 - padding
      self.geometry = (1, ((lo, lo + output_padding),) * 2, stride)
    else:
      self.geometry = (stride, ((padding, padding),) * 2, 1)

  def __call__(self, x):
    stride, pads, dilation = self.geometry
    y = conv2d(x, self.kernel[...], stride, pads, dilation)
    return y if self.bias is None else y + self.bias[...][None, None, None]


def _conv(cin, cout, k, s, p, rngs, use_bias=True):
  return TorchConv(cin, cout, k, s, p, use_bias=use_bias, kernel_init=_KAIMING, rngs=rngs)


def _conv_t(cin, cout, k, s, p, rngs, output_padding=0, use_bias=True):
  return TorchConv(cin, cout, k, s, p, transpose=True, output_padding=output_padding,
               use_bias=use_bias, rngs=rngs)


def _sample(mu, logvar, rngs):
  if rngs is None:
    return mu
  return mu + jax.random.normal(rngs.sample(), mu.shape) * jnp.exp(0.5 * logvar)


class SmallVAE(nnx.Module):
  """DeepAL+'s ``VAE_MNIST`` for ``[n, H, W, c]`` images, ``H, W`` divisible by 4."""

  def __init__(self, input_shape: tuple[int, int, int], latent_dim: int = 32, *,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    if h % 4 or w % 4:
      raise ValueError(f"the small VAE needs H and W divisible by 4, got {input_shape}")
    self.h4, self.w4 = h // 4, w // 4
    self.enc1 = _conv(c, 32, 4, 1, 2, rngs)
    self.enc2 = _conv(32, 32, 4, 2, 1, rngs)
    self.enc3 = _conv(32, 64, 4, 2, 1, rngs)
    flat = 64 * self.h4 * self.w4
    self.fc_mu = nnx.Linear(flat, latent_dim, rngs=rngs)
    self.fc_logvar = nnx.Linear(flat, latent_dim, rngs=rngs)
    self.dec_fc = nnx.Linear(latent_dim, flat, kernel_init=_KAIMING, rngs=rngs)
    self.dec1 = _conv_t(64, 32, 4, 2, 1, rngs)
    self.dec2 = _conv_t(32, 32, 4, 2, 1, rngs, output_padding=1)
    self.dec3 = _conv_t(32, c, 4, 1, 2, rngs)

  def encode(self, x, train: bool = False):
    """``(μ, log σ²)``, each ``[n, latent]``."""
    del train  # no BatchNorm
    h = jax.nn.relu(self.enc1(x))
    h = jax.nn.relu(self.enc2(h))
    h = jax.nn.relu(self.enc3(h))
    h = jnp.reshape(h, (h.shape[0], -1))
    return self.fc_mu(h), self.fc_logvar(h)

  def decode(self, z, train: bool = False):
    del train
    h = jax.nn.relu(self.dec_fc(z)).reshape(z.shape[0], self.h4, self.w4, 64)
    h = jax.nn.relu(self.dec1(h))
    h = jax.nn.relu(self.dec2(h))
    return self.dec3(h)

  def __call__(self, x, *, train: bool = False, rngs=None):
    """``(reconstruction [n, H, W, c], μ, log σ²)``; ``z = μ + ε·σ`` with ``rngs``, else μ."""
    mu, logvar = self.encode(x, train)
    return self.decode(_sample(mu, logvar, rngs), train), mu, logvar


class Conv32VAE(nnx.Module):
  """The VAAL authors' VAE for ``[n, 32, 32, c]`` images (BatchNorm in both halves)."""

  def __init__(self, input_shape: tuple[int, int, int], latent_dim: int = 32, *,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    if (h, w) != (32, 32):
      raise ValueError(f"the conv32 VAE needs 32×32 images, got {input_shape}")
    widths = (c, 128, 256, 512, 1024)
    self.enc = nnx.List([_conv(a, b, 4, 2, 1, rngs, use_bias=False)
                         for a, b in zip(widths[:-1], widths[1:])])
    self.enc_bn = nnx.List([nnx.BatchNorm(b, **_BN, rngs=rngs) for b in widths[1:]])
    self.fc_mu = nnx.Linear(1024 * 2 * 2, latent_dim, rngs=rngs)
    self.fc_logvar = nnx.Linear(1024 * 2 * 2, latent_dim, rngs=rngs)
    self.dec_fc = nnx.Linear(latent_dim, 1024 * 4 * 4, kernel_init=_KAIMING, rngs=rngs)
    dwidths = (1024, 512, 256, 128)
    self.dec = nnx.List([_conv_t(a, b, 4, 2, 1, rngs, use_bias=False)
                         for a, b in zip(dwidths[:-1], dwidths[1:])])
    self.dec_bn = nnx.List([nnx.BatchNorm(b, **_BN, rngs=rngs) for b in dwidths[1:]])
    self.out = _conv_t(128, c, 1, 1, 0, rngs)

  def encode(self, x, train: bool = False):
    h = x
    for conv, bn in zip(self.enc, self.enc_bn):
      h = jax.nn.relu(bn(conv(h), use_running_average=not train))
    h = jnp.reshape(h, (h.shape[0], -1))
    return self.fc_mu(h), self.fc_logvar(h)

  def decode(self, z, train: bool = False):
    h = self.dec_fc(z).reshape(z.shape[0], 4, 4, 1024)
    for conv, bn in zip(self.dec, self.dec_bn):
      h = jax.nn.relu(bn(conv(h), use_running_average=not train))
    return self.out(h)

  def __call__(self, x, *, train: bool = False, rngs=None):
    mu, logvar = self.encode(x, train)
    return self.decode(_sample(mu, logvar, rngs), train), mu, logvar


_CTORS = {"small": SmallVAE, "conv32": Conv32VAE}


def vae_kind(kind: str, input_shape: tuple[int, int, int]) -> str:
  """``"auto"`` → ``"conv32"`` for 32×32 images (the references' CIFAR VAE), else ``"small"``."""
  if kind == "auto":
    return "conv32" if tuple(input_shape[:2]) == (32, 32) else "small"
  if kind not in VAE_KINDS:
    raise ValueError(f"vae must be 'auto' or one of {VAE_KINDS}, got {kind!r}")
  return kind


class VaeNet(NamedTuple):
  """Static VAE (hashable by graph and kind: a ``jit`` static argument)."""
  graphdef: Any
  kind: str
  latent_dim: int
  init: Callable[[jax.Array], Variables]

  def apply(self, variables: Variables, x: jax.Array, key: jax.Array | None, *,
            train: bool = False):
    """``(reconstruction, μ, log σ², new_extra)``; ``key=None`` decodes μ (no sampling)."""
    model = nnx.merge(self.graphdef, variables.params, variables.extra, copy=True)
    rngs = nnx.Rngs(sample=key) if key is not None else None
    recon, mu, logvar = model(x, train=train, rngs=rngs)
    _, _, extra = nnx.split(model, nnx.Param, ...)
    return recon, mu, logvar, extra

  def encode(self, variables: Variables, x: jax.Array, *, train: bool = False):
    """``(μ, new_extra)`` of ``x``."""
    model = nnx.merge(self.graphdef, variables.params, variables.extra, copy=True)
    mu, _ = model.encode(x, train)
    _, _, extra = nnx.split(model, nnx.Param, ...)
    return mu, extra

  def __hash__(self):
    return hash((self.graphdef, self.kind, self.latent_dim))

  def __eq__(self, other):
    return (isinstance(other, VaeNet)
            and (self.graphdef, self.kind, self.latent_dim)
            == (other.graphdef, other.kind, other.latent_dim))


@functools.cache
def make_vae(kind: str, input_shape: tuple[int, int, int], latent_dim: int = 32) -> VaeNet:
  """The static ``VaeNet`` of ``kind`` (``"auto"``, ``"small"``, ``"conv32"``)."""
  input_shape = tuple(int(s) for s in input_shape)
  kind = vae_kind(kind, input_shape)
  ctor = _CTORS[kind]
  abstract = nnx.eval_shape(lambda: ctor(input_shape, latent_dim, rngs=nnx.Rngs(0)))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, ...)

  def init(key: jax.Array) -> Variables:
    _, params, extra = nnx.split(ctor(input_shape, latent_dim, rngs=nnx.Rngs(params=key)),
                                 nnx.Param, ...)
    return Variables(params, extra)

  return VaeNet(graphdef, kind, int(latent_dim), init)
