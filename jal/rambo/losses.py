"""RAMBO's training losses (Defs. 2–4, App. A.3): RankNet, OT regression and their sum.

All functions take per-pair arrays ``[P]`` and an optional weight ``[P]`` (0 on padded pairs)
and return the weighted mean over pairs.
"""

import jax
import jax.numpy as jnp
import optax

__all__ = ["rank_target", "rank_loss", "ot_loss", "total_loss", "regression_loss",
           "weighted_mean"]


def weighted_mean(per: jax.Array, weight: jax.Array | None = None) -> jax.Array:
  """``Σ w·per / Σ w`` (plain mean when ``weight`` is None) of ``[P]`` values."""
  if weight is None:
    return jnp.mean(per)
  weight = weight.astype(per.dtype)
  return jnp.sum(per * weight) / jnp.maximum(jnp.sum(weight), 1e-12)


def rank_target(u1: jax.Array, u2: jax.Array) -> jax.Array:
  """P̄ = 1[u₁ > u₂], ½ on ties, for ``[P]`` utilities."""
  return jnp.where(u1 > u2, 1.0, jnp.where(u1 < u2, 0.0, 0.5)).astype(jnp.result_type(u1, 1.0))


def rank_loss(s1: jax.Array, s2: jax.Array, u1: jax.Array, u2: jax.Array,
              weight: jax.Array | None = None) -> jax.Array:
  """RankNet cross-entropy of ``o = s₁ − s₂`` against P̄ (Burges 2005).

  Args:
    s1: ``[P]`` scores of the first sets.
    s2: ``[P]`` scores of the second sets.
    u1: ``[P]`` true utilities of the first sets.
    u2: ``[P]`` true utilities of the second sets.
    weight: optional ``[P]`` pair weights.

  Returns:
    Scalar mean of ``−P̄ log σ(o) − (1 − P̄) log(1 − σ(o))``.

  Example:
    >>> import jax.numpy as jnp
    >>> float(rank_loss(jnp.array([0.0]), jnp.array([0.0]), jnp.array([1.0]), jnp.array([0.0])))
    0.6931...
  """
  per = optax.sigmoid_binary_cross_entropy(s1 - s2, rank_target(u1, u2))
  return weighted_mean(per, weight)


def ot_loss(ot_hat1: jax.Array, ot_hat2: jax.Array, ot1: jax.Array, ot2: jax.Array,
            weight: jax.Array | None = None, lam1: float = 0.5, lam2: float = 0.5,
            lam3: float = 1.0) -> jax.Array:
  """L_OT = λ₁(ÔT₁ − OT₁)² + λ₂(ÔT₂ − OT₂)² − λ₃(min(ÔT₁, 0) + min(ÔT₂, 0)), per pair ``[P]``."""
  per = (lam1 * (ot_hat1 - ot1) ** 2 + lam2 * (ot_hat2 - ot2) ** 2
         - lam3 * (jnp.minimum(ot_hat1, 0.0) + jnp.minimum(ot_hat2, 0.0)))
  return weighted_mean(per, weight)


def total_loss(s1, s2, ot_hat1, ot_hat2, u1, u2, ot1, ot2, weight=None, lam_ot: float = 1.0,
               ranknet: bool = True) -> jax.Array:
  """L_Total = L_Rank + λ_OT·L_OT; with ``ranknet=False`` the MSE regression ("RankNet ×").

  Args:
    s1, s2: ``[P]`` score-head outputs (logits, or utilities when ``ranknet=False``).
    ot_hat1, ot_hat2: ``[P]`` OT-head outputs.
    u1, u2: ``[P]`` true utilities.
    ot1, ot2: ``[P]`` OT targets.
    weight: optional ``[P]`` pair weights.
    lam_ot: λ_OT (0 disables the OT task).
    ranknet: RankNet loss (True) or regression MSE on both sets (False).

  Returns:
    Scalar loss.
  """
  main = (rank_loss(s1, s2, u1, u2, weight) if ranknet
          else regression_loss(s1, s2, u1, u2, weight))
  if lam_ot == 0:
    return main
  return main + lam_ot * ot_loss(ot_hat1, ot_hat2, ot1, ot2, weight)


def regression_loss(p1, p2, u1, u2, weight=None) -> jax.Array:
  """MSE of predicted utilities ``[P]`` on both sets of each pair (½ each)."""
  return weighted_mean(0.5 * ((p1 - u1) ** 2 + (p2 - u2) ** 2), weight)
