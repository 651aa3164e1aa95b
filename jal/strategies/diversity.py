"""Diversity-aware strategies on embeddings: CoreSet, KMeans, BADGE."""

import functools

import jax
import jax.numpy as jnp

from jal import cluster, parallel, sharded_select
from jal.strategies.base import Context, Strategy, no_info
from jal.train import predict

__all__ = ["coreset_strategy", "kmeans_strategy", "badge_strategy"]


def _embed(key, ctx: Context):
  return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)


def coreset_strategy() -> Strategy:
  """Greedy k-center on penultimate embeddings (Sener & Savarese 2018)."""
  def pick(key, ctx: Context, out, budget):
    if ctx.mesh is not None:
      return sharded_select.kcenter_greedy(out[1], budget, ctx.labeled, ctx.mesh,
                                           chunk_size=ctx.chunk_size)
    return cluster.kcenter_greedy(out[1], budget, ctx.labeled, chunk_size=ctx.chunk_size)
  return Strategy("coreset", _embed, no_info(pick))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _kmeans_pick(key, emb, labeled, budget, n_iter):
  res = cluster.kmeans(key, emb, budget, mask=~labeled, n_iter=n_iter)
  d = jnp.sum((emb - res.centroids[jnp.maximum(res.assignment, 0)]) ** 2, axis=-1)
  member = res.assignment[None, :] == jnp.arange(budget)[:, None]  # [budget, n]
  return jnp.argmin(jnp.where(member, d[None, :], jnp.inf), axis=1)


def kmeans_strategy(n_iter: int = 20) -> Strategy:
  """k-means with ``budget`` clusters on unlabeled embeddings; the point nearest each centre
  (DeepAL+ ``KMeansSampling``). Empty clusters are topped up at random by ``select``."""
  def pick(key, ctx: Context, out, budget):
    if ctx.mesh is not None:
      return sharded_select.nearest_to_centroids(key, out[1], budget, ~ctx.labeled, ctx.mesh,
                                                 n_iter)
    return _kmeans_pick(key, out[1], ctx.labeled, budget, n_iter)

  return Strategy("kmeans", _embed, no_info(pick))


@functools.partial(jax.jit, static_argnums=(4,))
def _badge_pick(key, logits, emb, labeled, budget):
  p = jax.nn.softmax(logits, -1)
  a = p - jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype)
  return cluster.kmeans_plusplus_factored(key, a, emb, budget, ~labeled)


@jax.jit
def _badge_factor(logits):
  p = jax.nn.softmax(logits, -1)
  return p - jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype)


def badge_strategy() -> Strategy:
  """BADGE (Ash et al. 2020): k-means++ seeding on gradient embeddings
  ``g = (p − onehot(ŷ)) ⊗ e`` of the last layer, with ``‖g_i − g_j‖²`` computed in factored
  form so the ``[n, K·D]`` matrix is never built. The first centre is drawn uniformly (the
  original takes the largest-norm point)."""
  def pick(key, ctx: Context, out, budget):
    if ctx.mesh is not None:
      with parallel.use_mesh(ctx.mesh):
        a = _badge_factor(out[0])
      return sharded_select.kmeans_plusplus_factored(key, a, out[1], budget, ~ctx.labeled,
                                                     ctx.mesh)
    return _badge_pick(key, out[0], out[1], ctx.labeled, budget)

  return Strategy("badge", _embed, no_info(pick))
