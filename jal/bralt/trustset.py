"""TrustSet T_i (BRAL-T §4.1, SPEC A4–A5): class-balanced top scores of the labeled set.

The score of a labeled example is its GraNd approximation EL2N = ‖softmax − onehot‖₂,
weighted by SuperLoss's confidence σ*(ℓ_CE) in the default mode: by the envelope theorem
∂ℓ_s/∂logits = σ*(ℓ_CE)(p − y), so the GraNd of the SuperLoss is σ*·EL2N (A5).

Example:
  >>> import jax.numpy as jnp
  >>> s = jnp.array([0.1, 0.9, 0.5, 0.7]); y = jnp.array([0, 0, 1, 1])
  >>> trustset_mask(s, y, jnp.ones(4, bool), num_classes=2, per_class=1).tolist()
  [False, True, False, True]
"""

import functools
import math

import jax
import jax.numpy as jnp
import optax

from jal.models.net import Net, Variables
from jal.scores import el2n_from_logits, grand, superloss_sigma
from jal.train import predict

__all__ = ["SCORE_MODES", "scores_from_logits", "trust_scores", "class_rank", "trustset_mask",
           "per_class_size"]

SCORE_MODES = ("superloss_el2n", "el2n", "grand")


def per_class_size(budget: int, num_classes: int) -> int:
  """``N = ⌈b / K⌉`` (A4: ``|T_i| = b``)."""
  return math.ceil(budget / num_classes)


def scores_from_logits(logits: jax.Array, y: jax.Array, mode: str = "superloss_el2n",
                       tau: float | None = None, lam: float = 1.0) -> jax.Array:
  """EL2N (``mode="el2n"``) or σ*(ℓ_CE)·EL2N (``"superloss_el2n"``) of ``[n, K]`` logits.

  Args:
    logits: ``[n, K]``.
    y: ``[n]`` integer labels.
    mode: ``"superloss_el2n"`` or ``"el2n"``.
    tau: SuperLoss threshold; ``None`` means ``log K``.
    lam: SuperLoss regulariser λ.

  Returns:
    ``[n]`` scores.
  """
  e = el2n_from_logits(logits, y)
  if mode == "el2n":
    return e
  if mode != "superloss_el2n":
    raise ValueError(f"mode must be one of {SCORE_MODES[:2]} here, got {mode!r}")
  tau = math.log(logits.shape[-1]) if tau is None else tau
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
  return superloss_sigma(ce, tau, lam) * e


def trust_scores(net: Net, variables: Variables, x: jax.Array, y: jax.Array,
                 labeled: jax.Array, mode: str = "superloss_el2n", tau: float | None = None,
                 lam: float = 1.0, chunk_size: int = 1024,
                 logits: jax.Array | None = None) -> jax.Array:
  """Per-example importance scores of the labeled rows; ``−inf`` on unlabeled rows.

  Only the labels of labeled rows are read (the others are replaced by 0 before use).

  Args:
    net: the target network.
    variables: the model trained on the labeled set.
    x: ``[n, ...]`` pool inputs.
    y: ``[n]`` pool labels.
    labeled: ``[n]`` bool.
    mode: ``"superloss_el2n"`` (default, A5), ``"el2n"`` or ``"grand"`` (exact
      ‖∇_θ ℓ_CE‖₂, computed on the labeled rows only).
    tau: SuperLoss τ (``None`` → ``log K``).
    lam: SuperLoss λ.
    chunk_size: rows per inference chunk.
    logits: optional precomputed ``[n, K]`` logits (skips the forward pass).

  Returns:
    ``[n]`` float32 scores.
  """
  if mode not in SCORE_MODES:
    raise ValueError(f"unknown score mode {mode!r}; choose from {SCORE_MODES}")
  labeled = jnp.asarray(labeled, bool)
  y_safe = jnp.where(labeled, jnp.asarray(y), 0)
  if mode == "grand":
    idx = jnp.flatnonzero(labeled)
    g = grand(net, variables, x[idx], y_safe[idx], chunk_size=min(chunk_size, 64))
    return jnp.full(labeled.shape, -jnp.inf).at[idx].set(g)
  if logits is None:
    logits, _ = predict(net, variables, x, chunk_size)
  s = scores_from_logits(logits, y_safe, mode, tau, lam)
  return jnp.where(labeled, s, -jnp.inf)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def class_rank(scores: jax.Array, y: jax.Array, mask: jax.Array, num_classes: int
               ) -> jax.Array:
  """Rank of each masked row within its class by descending score (ties: lower index).

  Args:
    scores: ``[n]``.
    y: ``[n]`` classes in ``[0, K)``.
    mask: ``[n]`` bool rows to rank.
    num_classes: ``K``.

  Returns:
    ``[n]`` int32 ranks (0 = best); unmasked rows get ``n``.
  """
  n = scores.shape[0]
  cls = jnp.where(mask, y, num_classes).astype(jnp.int32)
  order = jnp.lexsort((-scores, cls))                  # by class, then descending score
  counts = jnp.bincount(cls, length=num_classes + 1)
  starts = jnp.cumsum(counts) - counts
  pos = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  return jnp.where(mask, pos - starts[cls], n).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("num_classes", "per_class"))
def trustset_mask(scores: jax.Array, y: jax.Array, labeled: jax.Array, num_classes: int,
                  per_class: int) -> jax.Array:
  """The TrustSet: the top-``per_class`` labeled rows of every class by score.

  Classes with fewer members contribute all they have; nothing is redistributed (A4).

  Args:
    scores: ``[n]`` scores (higher = more important).
    y: ``[n]`` labels (read only where ``labeled``).
    labeled: ``[n]`` bool.
    num_classes: ``K``.
    per_class: ``N`` (BRAL-T: ``⌈b/K⌉``).

  Returns:
    ``[n]`` bool mask.
  """
  labeled = jnp.asarray(labeled, bool)
  y = jnp.where(labeled, y, 0)
  return labeled & (class_rank(scores, y, labeled, num_classes) < per_class)
