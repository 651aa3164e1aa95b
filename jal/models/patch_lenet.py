"""LeNet-5 on precomputed conv1 patches: the same network (same ``init``, same parameters)
with its two convolutions written as matrix products, the fast form on XLA:CPU for many small
trainings on one fixed pool (``jal.train.fit_subsets``; BUILD_NOTES.md)."""

import jax
import jax.numpy as jnp

from jal.models.net import Net, Variables

__all__ = ["conv_patches", "pool2", "param_value", "patch_lenet"]


def conv_patches(x: jax.Array, k: int = 5) -> jax.Array:
  """'VALID' ``k×k`` patches of ``x [n, H, W, C]`` → ``[n, H−k+1, W−k+1, k·k·C]``.

  The last axis is ordered ``(kh, kw, c)``, i.e. it matches ``kernel.reshape(k*k*C, out)``
  of a flax ``Conv`` kernel ``[k, k, C, out]``.
  """
  h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
  cols = [x[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)]
  return jnp.concatenate(cols, axis=-1)


def pool2(h: jax.Array) -> jax.Array:
  n, hh, ww, c = h.shape
  return jnp.max(jnp.reshape(h, (n, hh // 2, 2, ww // 2, 2, c)), axis=(2, 4))


def param_value(p):
  return p.get_value() if hasattr(p, "get_value") else p


def _patch_forward(params, patches: jax.Array):
  """LeNet-5 ('VALID', 28×28) on conv1 patches ``[b, 24, 24, 25·C]`` → logits, embedding."""
  k1, b1 = param_value(params["conv1"]["kernel"]), param_value(params["conv1"]["bias"])
  k2, b2 = param_value(params["conv2"]["kernel"]), param_value(params["conv2"]["bias"])
  w1, w2 = jnp.reshape(k1, (-1, k1.shape[-1])), jnp.reshape(k2, (-1, k2.shape[-1]))
  h = jnp.einsum("bhwp,pc->bhwc", patches, w1) + b1[None, None, None]
  h = pool2(jax.nn.relu(h))
  h = jnp.einsum("bhwp,pc->bhwc", conv_patches(h), w2) + b2[None, None, None]
  h = pool2(jax.nn.relu(h))
  h = jnp.reshape(h, (h.shape[0], -1))
  lin = lambda name, t: (t @ param_value(params[name]["kernel"])
                         + param_value(params[name]["bias"])[None])
  h = jax.nn.relu(lin("fc1", h))
  h = jax.nn.relu(lin("fc2", h))
  return lin("head", h), h


class _PatchNet(Net):
  """``Net`` of LeNet-5 whose inputs are conv1 patches (see ``patch_lenet``)."""

  def apply(self, variables: Variables, x: jax.Array, *, train: bool = False,
            dropout: bool | None = None, key: jax.Array | None = None):
    del train, dropout, key  # no dropout, no BatchNorm (checked in patch_lenet)
    logits, emb = _patch_forward(variables.params, x)
    return logits, emb, variables.extra


def patch_lenet(net: Net) -> Net:
  """The same LeNet-5 (same ``init``, same parameters) taking conv1 patches as input.

  Feed it ``conv_patches(x)`` instead of ``x [n, 28, 28, C]``.

  Raises:
    ValueError: for anything but a dropout-free LeNet-5 on images of at least 20 px.
  """
  if net.name != "lenet" or net.dropout:
    raise ValueError(f"patch_lenet needs a dropout-free LeNet-5, got {net.name!r} "
                     f"(dropout {net.dropout})")
  return _PatchNet(*net._replace(name="lenet/patches"))
