"""The utility model's CNN ψ on precomputed conv1 patches (RAMBO's fast path on XLA:CPU).

``patch_set_net`` gives the same utility model (same parameters, same function) with ψ's
convolutions written as matrix products over conv1 patches of the pool, extracted once; the
classifier side of the fast path is ``jal.models.patch_lenet`` / ``jal.train.fit_subsets``.
"""

import jax
import jax.numpy as jnp

from jal.models.patch_lenet import conv_patches, param_value, pool2
from jal.rambo.utility_model import SetNet

__all__ = ["patch_set_net"]


def _patch_psi(params, patches: jax.Array) -> jax.Array:
  """The utility model's CNN ψ (``utility_model._CNN``, no dropout) on conv1 patches."""
  k1, b1 = param_value(params["conv1"]["kernel"]), param_value(params["conv1"]["bias"])
  k2, b2 = param_value(params["conv2"]["kernel"]), param_value(params["conv2"]["bias"])
  w1, w2 = jnp.reshape(k1, (-1, k1.shape[-1])), jnp.reshape(k2, (-1, k2.shape[-1]))
  h = jnp.einsum("bhwp,pc->bhwc", patches, w1) + b1[None, None, None]
  h = jax.nn.relu(pool2(h))
  h = jnp.einsum("bhwp,pc->bhwc", conv_patches(h), w2) + b2[None, None, None]
  h = jax.nn.relu(pool2(h))
  h = jnp.reshape(h, (h.shape[0], -1))
  lin = lambda name, t: (t @ param_value(params[name]["kernel"])
                         + param_value(params[name]["bias"])[None])
  return jax.nn.relu(lin("fc2", jax.nn.relu(lin("fc1", h))))


class _PatchSetNet(SetNet):
  """``SetNet`` whose pool elements are conv1 patches (deterministic ψ only)."""

  def elements(self, params, x, key=None):
    if key is not None:
      raise ValueError("the patch form of ψ has no dropout")
    return _patch_psi(params["psi"], x)

  def __hash__(self):
    return hash(("patches", self.graphdef))

  def __eq__(self, other):
    return isinstance(other, _PatchSetNet) and self.graphdef == other.graphdef


def patch_set_net(set_net: SetNet, params, pool: jax.Array):
  """``(set_net′, pool′)`` computing the same utility model faster on a fixed image pool.

  For a CNN ψ on ``[n, H, W, C]`` images, ψ's conv1 patches of the pool are extracted once and
  its convolutions run as matrix products; otherwise the inputs come back unchanged.
  """
  if isinstance(set_net, _PatchSetNet) or pool.ndim != 4 or "conv1" not in params["psi"]:
    return set_net, pool
  return _PatchSetNet(*set_net), conv_patches(jnp.asarray(pool))
