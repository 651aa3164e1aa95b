"""Diversity-aware strategies on embeddings: CoreSet, KMeans, BADGE."""

import jax
import jax.numpy as jnp

from jal import cluster, parallel
from jal.strategies.base import Context, Strategy, no_info
from jal.train import predict

__all__ = ["coreset_strategy", "kmeans_strategy", "badge_strategy"]


def _embed(key, ctx: Context):
  return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)


def coreset_strategy() -> Strategy:
  """Greedy k-center on penultimate embeddings (Sener & Savarese 2018)."""
  def pick(key, ctx: Context, out, budget):
    return cluster.kcenter_greedy(out[1], budget, ctx.labeled, chunk_size=ctx.chunk_size,
                                  mesh=ctx.mesh)
  return Strategy("coreset", _embed, no_info(pick))


def kmeans_strategy(n_iter: int = 20) -> Strategy:
  """k-means with ``budget`` clusters on unlabeled embeddings; the point nearest each centre
  (DeepAL+ ``KMeansSampling``). Empty clusters are topped up at random by ``select``."""
  def pick(key, ctx: Context, out, budget):
    return cluster.nearest_to_centroids(key, out[1], budget, ~ctx.labeled, n_iter,
                                        mesh=ctx.mesh)

  return Strategy("kmeans", _embed, no_info(pick))


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
    with parallel.use_mesh(ctx.mesh):  # the factor is computed where the logits live
      a = _badge_factor(out[0])
    return cluster.kmeans_plusplus_factored(key, a, out[1], budget, ~ctx.labeled,
                                            mesh=ctx.mesh)

  return Strategy("badge", _embed, no_info(pick))
