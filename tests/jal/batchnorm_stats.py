"""Non-trivial BatchNorm statistics for tests (eval mode then differs from batch statistics)."""

import jax
import jax.numpy as jnp

import jal


def perturbed_batchnorm(variables: jal.Variables, rng, shift_params: bool = True
                        ) -> jal.Variables:
  """``variables`` with running means ~ N(0, 0.2²), variances ~ U(0.5, 2) and, with
  ``shift_params``, BatchNorm scale / bias moved by N(0, 0.1²) (draws from ``rng`` in that
  order)."""
  def perturb(path, leaf):
    name = getattr(path[-2], "key", None) if len(path) > 1 else None
    if name == "mean":
      return jnp.asarray(rng.normal(scale=0.2, size=leaf.shape), leaf.dtype)
    if name == "var":
      return jnp.asarray(rng.uniform(0.5, 2.0, size=leaf.shape), leaf.dtype)
    return leaf
  extra = jax.tree_util.tree_map_with_path(perturb, variables.extra)
  if not shift_params:
    return jal.Variables(variables.params, extra)

  def shift_bn(path, leaf):  # BatchNorm scale/bias away from 1/0
    if any("bn" in str(getattr(k, "key", "")) for k in path):
      return leaf + jnp.asarray(rng.normal(scale=0.1, size=leaf.shape), leaf.dtype)
    return leaf
  return jal.Variables(jax.tree_util.tree_map_with_path(shift_bn, variables.params), extra)
