"""SAAL — Sharpness-Aware Active Learning (Kim et al., ICML 2023).

BASELINES.md §9, after ``YoonyeongKim/SAAL`` (``utils_al.max_sharpness_acquisition_pseudo``,
``method_AcqOnly.acquire_AcqOnly`` / ``init_centers``). Per candidate ``x`` (one at a time, as
the reference's ``pool_batch_size = 1``; here ``vmap``ped over a chunk), model in eval mode:
``ŷ = argmax f(x; θ)``, ``ℓ₀ = CE(f(x; θ), ŷ)``, ``g = ∇_θ ℓ₀`` over every trainable parameter,
``ε = ρ · θ ⊙ θ ⊙ g / (‖|θ| ⊙ g‖₂ + 1e-12)`` (the norm over all parameters jointly: the ASAM-style
perturbation of the code), ``ℓ₁ = CE(f(x; θ + ε), ŷ)``. Score ``"max"``: ``ℓ₁``; ``"diff"``:
``ℓ₁ − ℓ₀``. Pick ``"max"`` / ``"diff"``: top-``B``; ``"max_diversity"`` (the reference default)
/ ``"diff_diversity"``: k-means++ seeding on the 1-D score vector — first the largest ``|score|``,
then draws with probability ∝ squared distance to the nearest chosen score.

Choices (§9.3): the candidates are a uniform random subset of ``pool_subset`` unlabeled rows
(reference: 2,000; all of U when fewer — ``min(pool_subset, n)`` rows are scored every round so
shapes stay static, the labeled ones masked; with ``B`` above the candidate count the remaining
picks are random unlabeled rows); pseudo labels only (the reference's ``labelMode='Pseudo'``
default); the classifier is jal's standard trainer — the reference's optional SAM training of the
classifier is not provided (BRAL-T does not say which one it used). Per-candidate memory is one
parameter copy per row of a chunk (``chunk_size``, default 64).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jal import cluster, parallel
from jal.models.net import Variables
from jal.strategies.base import Context, Strategy

__all__ = ["saal_strategy", "sharpness_losses", "perturbation", "kmeans_plusplus_1d", "MODES"]

MODES = ("max", "diff", "max_diversity", "diff_diversity")


def perturbation(params, grads, rho: float):
  """``ε = ρ · θ ⊙ θ ⊙ g / (‖|θ| ⊙ g‖₂ + 1e-12)``, the norm over every leaf jointly."""
  sq = sum(jnp.sum((jnp.abs(p) * g) ** 2) for p, g in
           zip(jax.tree.leaves(params), jax.tree.leaves(grads)))
  scale = rho / (jnp.sqrt(sq) + 1e-12)
  return jax.tree.map(lambda p, g: p * p * g * scale, params, grads)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _sharpness(net, variables, x, rho, chunk):
  def loss(params, xi, yi):
    logits, _, _ = net.apply(Variables(params, variables.extra), xi[None], train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yi[None])[0]

  def one(xi):
    logits, _, _ = net.apply(variables, xi[None], train=False)
    y_hat = jnp.argmax(logits[0])
    l0, g = jax.value_and_grad(loss)(variables.params, xi, y_hat)
    eps = perturbation(variables.params, g, rho)
    l1 = loss(jax.tree.map(jnp.add, variables.params, eps), xi, y_hat)
    return jnp.stack([l0, l1])

  return parallel.chunked_map(lambda c: jax.vmap(one)(c[0]), (x,), chunk)


def sharpness_losses(net, variables, x, *, rho: float = 0.05, chunk_size: int = 64):
  """``[m, 2]``: the pseudo-label loss ``ℓ₀`` and the perturbed loss ``ℓ₁`` of every row of
  ``x`` ``[m, H, W, C]`` (module docstring), ``chunk_size`` rows per vmapped chunk."""
  return _sharpness(net, variables, jnp.asarray(x), jnp.float32(rho), int(chunk_size))


@functools.partial(jax.jit, static_argnames=("k",))
def kmeans_plusplus_1d(key: jax.Array, s: jax.Array, k: int,
                       valid: jax.Array | None = None) -> jax.Array:
  """The reference's ``init_centers`` on a score vector ``s`` ``[m]``: first the largest
  ``|s|``, then ``k − 1`` draws ∝ squared distance to the nearest chosen score (uniform over
  the unchosen rows when all are 0). Only ``valid`` ``[m]`` positions (default all) are drawn.
  Returns ``[k]`` distinct positions (``k ≤ valid.sum()``)."""
  valid = jnp.ones(s.shape, bool) if valid is None else valid
  keys = jax.random.split(key, k)
  first = jnp.argmax(jnp.where(valid, jnp.abs(s), -jnp.inf)).astype(jnp.int32)
  avail = valid.at[first].set(False)
  min_d = (s - s[first]) ** 2

  def body(i, carry):
    idx, avail, min_d = carry
    j = jax.random.categorical(keys[i], cluster.d2_logits(avail, min_d)).astype(jnp.int32)
    return idx.at[i].set(j), avail.at[j].set(False), jnp.minimum(min_d, (s - s[j]) ** 2)

  idx = jnp.zeros((k,), jnp.int32).at[0].set(first)
  return lax.fori_loop(1, k, body, (idx, avail, min_d))[0]


def saal_strategy(mode: str = "max_diversity", rho: float = 0.05, pool_subset: int = 2000,
                  chunk_size: int = 64) -> Strategy:
  """SAAL's acquisition on jal's standard classifier (module docstring).

  Args:
    mode: ``"max"``, ``"diff"``, ``"max_diversity"`` (reference default) or
      ``"diff_diversity"``.
    rho: perturbation radius ``ρ`` (reference: 0.05).
    pool_subset: random unlabeled candidates scored per round (reference: 2,000).
    chunk_size: candidates per vmapped chunk (one parameter copy each).
  """
  if mode not in MODES:
    raise ValueError(f"unknown SAAL mode {mode!r}; choose from {MODES}")
  if pool_subset < 1:
    raise ValueError(f"pool_subset must be >= 1, got {pool_subset}")

  def score(key, ctx: Context):
    # A static number of candidates (no recompiles across rounds): when fewer than
    # pool_subset rows are unlabeled, the draw's tail holds labeled rows, masked in pick.
    labeled = ctx.labeled
    m = min(int(pool_subset), int(labeled.shape[0]))
    u = cluster.uniform_scores(key, labeled.shape[0])
    cand = cluster.top_k_unlabeled(u, labeled, m)
    return cand, sharpness_losses(ctx.net, ctx.variables, ctx.x[cand], rho=rho,
                                  chunk_size=chunk_size)

  def pick(key, ctx: Context, aux, budget):
    cand, losses = np.asarray(aux[0]), aux[1]
    valid = ~np.asarray(ctx.labeled)[cand]
    s = losses[:, 1] - (losses[:, 0] if mode.startswith("diff") else 0.0)
    k = min(budget, int(valid.sum()))
    if mode.endswith("diversity"):
      pos = kmeans_plusplus_1d(key, s, k, jnp.asarray(valid))
    else:
      pos = lax.top_k(jnp.where(valid, s, -jnp.inf), k)[1]
    idx = cand[np.asarray(pos)]
    cand = cand[valid]
    if k < budget:  # more queries than candidates: random unlabeled rows fill up
      taken = np.asarray(ctx.labeled).copy()
      taken[cand] = True
      u = cluster.uniform_scores(jax.random.fold_in(key, 1), taken.size)
      idx = np.concatenate([idx, np.asarray(cluster.top_k_unlabeled(u, taken, budget - k))])
    return idx, {"candidates": int(cand.size), "score_mean": float(np.mean(np.asarray(s)[valid]))}

  return Strategy("saal", score, pick)
