"""ActiveFT's selection step (Xie et al., CVPR 2023) on fixed features.

BASELINES.md §8.2, after ``yichen928/ActiveFT`` ``data_selection/sample_tools/ActiveFT_CIFAR.py``
(``SampleModel.get_loss``, ``optimize_dist``). Features ``f_i`` are L2-normalised; ``k``
centroid parameters ``θ_j`` start at the features of ``k`` random rows; with ``θ̂ = θ/‖θ‖``,
``c(i) = argmax_j f_i·θ̂_j``, ``s_i = f_i·θ̂_{c(i)}/τ`` and ``R_k = Σ_j exp(sg(θ̂_j)·θ̂_k/τ)`` (one
side stop-gradient, ``j = k`` included) the loss is
``J = −(1/n) Σ_i [s_i − log(exp(s_i) + β·R_{c(i)})]``, minimised by Adam (lr 1e-3, 300 steps,
τ = 0.07, β = 1, no scheduler: the CIFAR script's defaults). Output: for each centroid in index
order, the row with the largest ``f·θ̂_j`` not yet chosen.

**Stand-in features.** The paper's features are DINO ViT-S/16 [CLS] tokens; those weights cannot
be downloaded here, so the strategy uses jal's penultimate embeddings of the current model
(``jal.predict``): results are "ActiveFT's selection on jal embeddings", not ActiveFT — say so
wherever they appear.

**In the AL loop** (ActiveFT itself is one-shot): ``k = B`` centroids; the loss runs over the
whole pool (labeled rows included: the distribution to match); the initial centroids and the
output are unlabeled rows only. Memory stays ``O(n·d + chunk·k)``: the assignment is a chunked
argmax, the loss gathers ``θ̂_{c(i)}`` ``[n, d]``, and ``log`` terms use ``logsumexp`` /
``logaddexp`` (the reference exponentiates ``1/τ ≈ 14.3`` directly).
"""

import functools

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jal import cluster, parallel
from jal.strategies.base import Context, Strategy
from jal.train import predict

__all__ = ["activeft_strategy", "activeft_loss", "activeft_select", "normalize"]

_HI = lax.Precision.HIGHEST


def normalize(x: jax.Array) -> jax.Array:
  """Rows divided by ``max(‖x‖, 1e-12)`` (PyTorch's ``F.normalize``)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _assign(f, theta_hat, chunk):
  return parallel.chunked_map(
      lambda c: jnp.argmax(jnp.matmul(c[0], theta_hat.T, precision=_HI), axis=1), (f,), chunk)


def activeft_loss(theta: jax.Array, f: jax.Array, assign: jax.Array, temperature: float = 0.07,
                  balance: float = 1.0) -> jax.Array:
  """ActiveFT's ``J`` for centroids ``theta`` ``[k, d]`` and normalised features ``f``
  ``[n, d]`` whose nearest centroid is ``assign`` ``[n]`` (module docstring)."""
  th = normalize(theta)
  s = jnp.sum(f * th[assign], axis=-1) / temperature
  gram = jnp.matmul(lax.stop_gradient(th), th.T, precision=_HI) / temperature  # [j, k]
  log_r = jax.nn.logsumexp(gram, axis=0) + jnp.log(balance)
  return -jnp.mean(s - jnp.logaddexp(s, log_r[assign]))


@functools.partial(jax.jit, static_argnames=("k", "iters", "chunk"))
def _select(key, f, mask, k, iters, lr, temperature, balance, chunk):
  init = cluster.top_k_unlabeled(jax.random.uniform(key, mask.shape), ~mask, k)
  opt = optax.adam(lr)

  def step(carry, _):
    theta, state = carry
    assign = _assign(f, normalize(theta), chunk)
    loss, g = jax.value_and_grad(activeft_loss)(theta, f, assign, temperature, balance)
    updates, state = opt.update(g, state, theta)
    return (optax.apply_updates(theta, updates), state), loss

  theta = f[init]
  (theta, _), losses = lax.scan(step, (theta, opt.init(theta)), None, length=iters)
  th = normalize(theta)

  def out(j, carry):
    idx, avail = carry
    sim = jnp.matmul(f, th[j], precision=_HI)
    i = jnp.argmax(jnp.where(avail, sim, -jnp.inf)).astype(jnp.int32)
    return idx.at[j].set(i), avail.at[i].set(False)

  idx, _ = lax.fori_loop(0, k, out, (jnp.zeros((k,), jnp.int32), mask))
  return idx, theta, losses


def activeft_select(key: jax.Array, features: jax.Array, k: int, mask: jax.Array | None = None,
                    *, iters: int = 300, lr: float = 1e-3, temperature: float = 0.07,
                    balance: float = 1.0, chunk_size: int = 4096):
  """ActiveFT's selection of ``k`` rows (module docstring).

  Args:
    key: PRNG key of the initial centroids.
    features: ``[n, d]`` features (normalised here).
    k: number of centroids = rows returned (static); ``k ≤ mask.sum()``.
    mask: ``[n]`` bool of the rows that may start a centroid and be returned (default all);
      every row enters the loss.
    iters: Adam steps; lr: Adam's learning rate; temperature: ``τ``; balance: ``β``.
    chunk_size: rows per chunk of the nearest-centroid argmax.

  Returns:
    ``(indices [k] distinct, centroids θ [k, d] (unnormalised), losses [iters])``.
  """
  f = normalize(jnp.asarray(features, jnp.float32))
  mask = jnp.ones(f.shape[0], bool) if mask is None else jnp.asarray(mask, bool)
  return _select(key, f, mask, int(k), int(iters), jnp.float32(lr), jnp.float32(temperature),
                 jnp.float32(balance), int(chunk_size))


def activeft_strategy(iters: int = 300, lr: float = 1e-3, temperature: float = 0.07,
                      balance: float = 1.0) -> Strategy:
  """ActiveFT's selection step on jal embeddings standing in for DINO features (module
  docstring): ``B`` centroids per query, Adam on the ActiveFT loss, nearest unlabeled rows."""
  def score(key, ctx: Context):
    n = ctx.labeled.shape[0]
    return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)[1][:n]

  def pick(key, ctx: Context, emb, budget):
    idx, _, losses = activeft_select(key, emb, budget, ~ctx.labeled, iters=iters, lr=lr,
                                     temperature=temperature, balance=balance,
                                     chunk_size=ctx.chunk_size)
    return idx, ({"final_loss": float(losses[-1])} if iters > 0 else {})

  return Strategy("activeft", score, pick)
