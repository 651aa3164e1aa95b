"""GLISTER-active (Killamsetty et al., AAAI 2021) as DISTIL's GLISTER-ONLINE, last layer only.

The last-layer gradient of the cross-entropy at ``(x, y)`` is ``g = [a ; vec(a hᵀ)]`` with
``a = softmax(z) − e_y`` (bias part first, weight part class-major) and ``h`` the penultimate
embedding. GLISTER (BASELINES.md §5.2):

1. one SGD step of size ``η`` on the last layer with the **summed** gradient of the labeled
   set moves the validation logits to ``z_v − η Σ_{j∈L} (1 + h_j·h_v) a_j``;
2. ``B`` greedy steps: pick the unlabeled row with the largest ``g_i·ḡ_V`` (``ḡ_V`` the mean
   validation gradient at the current logits, unlabeled rows with their predicted label ŷ),
   then step the validation logits by ``−η (1 + h_i·h_v) a_i`` and recompute ``ḡ_V``.

Everything is factorised: ``g_i·ḡ_V = a_i·ḡ_b + a_iᵀ Ḡ_W h_i`` with ``ḡ_b = mean_v a_v`` and
``Ḡ_W = A_Vᵀ H_V / |V|`` (``[K, D]``), so no ``[n, K(D+1)]`` matrix is built and the memory is
``O(n (K + D))``. The greedy is one ``lax.fori_loop`` with a picked mask (ties: lowest index).
Only DISTIL's default regulariser ``'none'`` is offered (its ``'Diversity'`` / ``'FacLoc'``
need an ``n × n`` kernel).
"""

import functools

import jax
import jax.numpy as jnp

from jal.strategies.base import Context, Strategy
from jal.train import predict

__all__ = ["last_layer_factor", "validation_gradient", "glister_gains", "logit_step",
           "glister_greedy", "glister_strategy", "DEFAULT_STEP_SIZE", "NO_VALIDATION"]

# RAMBO trains with Adam at 1e-3 and does not state GLISTER's η; DISTIL uses the training lr.
DEFAULT_STEP_SIZE = 1e-3

NO_VALIDATION = ("glister needs a validation split (Context.x_val / y_val) and this run has "
                 "none: set --config.data.val_size to a positive number (e.g. 1000)")


def last_layer_factor(logits: jax.Array, labels: jax.Array | None = None) -> jax.Array:
  """``a = softmax(z) − onehot(y)`` ``[n, K]`` (``labels=None``: the predicted class ŷ)."""
  p = jax.nn.softmax(logits, axis=-1)
  y = jnp.argmax(p, axis=-1) if labels is None else labels
  return p - jax.nn.one_hot(y, p.shape[-1], dtype=p.dtype)


def validation_gradient(z_v: jax.Array, h_v: jax.Array, y_v: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:
  """Mean last-layer CE gradient over the validation rows, factorised.

  Args:
    z_v: ``[V, K]`` (stepped) validation logits.
    h_v: ``[V, D]`` validation embeddings.
    y_v: ``[V]`` validation labels.

  Returns:
    ``(ḡ_b [K], Ḡ_W [K, D])``: the bias part and the weight part of ``mean_v g(v, y_v)``.
  """
  a = last_layer_factor(z_v, y_v)
  return jnp.mean(a, axis=0), a.T @ h_v / h_v.shape[0]


def glister_gains(a: jax.Array, h: jax.Array, g_b: jax.Array, g_w: jax.Array) -> jax.Array:
  """``g_i · ḡ_V`` ``[n]`` from the factors ``a [n, K]``, ``h [n, D]`` and
  :func:`validation_gradient`'s ``(ḡ_b [K], Ḡ_W [K, D])``."""
  return a @ g_b + jnp.sum(a * (h @ g_w.T), axis=-1)


def logit_step(z_v: jax.Array, h_v: jax.Array, a: jax.Array, h: jax.Array, weight: jax.Array,
               step_size: float | jax.Array) -> jax.Array:
  """Validation logits after one SGD step of the last layer on a weighted sum of gradients.

  Args:
    z_v: ``[V, K]`` logits; ``h_v``: ``[V, D]`` embeddings.
    a: ``[m, K]`` factors and ``h``: ``[m, D]`` embeddings of the rows the step is taken on.
    weight: ``[m]`` weight of each row's gradient (0 drops a row, 1 keeps it).
    step_size: ``η``.

  Returns:
    ``z_v − η (Σ_j w_j a_j + (Σ_j w_j a_j h_jᵀ) h_v)``, ``[V, K]``.
  """
  aw = a * weight[:, None]
  return z_v - step_size * (jnp.sum(aw, axis=0)[None, :] + h_v @ (aw.T @ h).T)


@functools.partial(jax.jit, static_argnames=("budget",))
def glister_greedy(a_u: jax.Array, h_u: jax.Array, candidates: jax.Array, z_v: jax.Array,
                   h_v: jax.Array, y_v: jax.Array, step_size: float | jax.Array, budget: int
                   ) -> tuple[jax.Array, jax.Array]:
  """GLISTER-ONLINE's greedy: ``budget`` picks, the validation logits stepped after each.

  Args:
    a_u: ``[n, K]`` factors ``softmax − onehot(ŷ)`` of the pool.
    h_u: ``[n, D]`` pool embeddings.
    candidates: ``[n]`` bool rows that may be picked (needs ``≥ budget`` True).
    z_v: ``[V, K]`` validation logits after the labeled step (:func:`logit_step`).
    h_v: ``[V, D]`` validation embeddings.
    y_v: ``[V]`` validation labels.
    step_size: ``η``.
    budget: ``B`` (static).

  Returns:
    ``(indices [B] int32, gains [B])``: the picks in order and their gains when picked.
  """
  def body(t, carry):
    z, avail, idx, gains = carry
    g_b, g_w = validation_gradient(z, h_v, y_v)
    g = jnp.where(avail, glister_gains(a_u, h_u, g_b, g_w), -jnp.inf)
    i = jnp.argmax(g)
    z = z - step_size * a_u[i][None, :] * (1.0 + h_v @ h_u[i])[:, None]
    return z, avail.at[i].set(False), idx.at[t].set(i), gains.at[t].set(g[i])

  init = (z_v, candidates, jnp.zeros((budget,), jnp.int32), jnp.zeros((budget,), a_u.dtype))
  _, _, idx, gains = jax.lax.fori_loop(0, budget, body, init)
  return idx, gains


@functools.partial(jax.jit, static_argnames=("budget",))
def _pick(logits, emb, y, labeled, z_v, h_v, y_v, step_size, budget):
  a_u = last_layer_factor(logits)
  # The labeled rows with their true labels (masked: unlabeled labels are never read).
  a_l = last_layer_factor(logits, jnp.where(labeled, y, 0))
  z = logit_step(z_v, h_v, a_l, emb, labeled.astype(a_l.dtype), step_size)
  return glister_greedy(a_u, emb, ~labeled, z, h_v, y_v, step_size, budget)


def glister_strategy(step_size: float | None = None) -> Strategy:
  """GLISTER-active (DISTIL's GLISTER-ONLINE, regulariser ``'none'``, last layer only).

  Needs a validation split in the context (``x_val``, ``y_val``): RAMBO's S_val, or the
  loop's ``data.val_size`` rows.

  Args:
    step_size: ``η`` of the one-step Taylor approximation (``None``: 1e-3, the Adam lr the
      RAMBO protocol trains with; DISTIL passes its SGD training lr, e.g. 0.01).

  Returns:
    The ``Strategy``; ``pick``'s info holds the first and last greedy gains.

  Raises:
    ValueError (from ``score``): when the context has no validation split.
  """
  eta = DEFAULT_STEP_SIZE if step_size is None else float(step_size)

  def score(key, ctx: Context):
    if ctx.x_val is None or ctx.y_val is None or len(ctx.y_val) == 0:
      raise ValueError(NO_VALIDATION)
    logits, emb = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)
    z_v, h_v = predict(ctx.net, ctx.variables, ctx.x_val, ctx.chunk_size)
    return logits, emb, z_v, h_v

  def pick(key, ctx: Context, aux, budget):
    logits, emb, z_v, h_v = aux
    idx, gains = _pick(logits, emb, ctx.y, ctx.labeled, z_v, h_v, jnp.asarray(ctx.y_val),
                       jnp.float32(eta), budget)
    return idx, {"first_gain": float(gains[0]), "last_gain": float(gains[-1])}

  return Strategy("glister", score, pick)
