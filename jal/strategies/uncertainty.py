"""Random and uncertainty strategies: Random, Margin, Entropy, LeastConfidence, BALD."""

import functools

import jax

from jal import parallel, scores, sharded_select
from jal.strategies.base import Context, Strategy, no_info, top_k_unlabeled
from jal.train import predict

__all__ = ["random_strategy", "margin_strategy", "entropy_strategy",
           "least_confidence_strategy", "bald_strategy"]


@functools.partial(jax.jit, static_argnums=(2,))
def _random_pick(key, labeled, budget):
  return top_k_unlabeled(jax.random.uniform(key, labeled.shape), labeled, budget)


def random_strategy() -> Strategy:
  """Uniform sampling of unlabeled rows (DeepAL+ ``RandomSampling``)."""
  def pick(key, ctx: Context, aux, budget):
    if ctx.mesh is None:
      return _random_pick(key, ctx.labeled, budget)
    u = sharded_select.uniform_scores(key, ctx.labeled.shape[0], ctx.mesh)
    return sharded_select.top_k_unlabeled(u[:ctx.labeled.shape[0]], ctx.labeled, budget,
                                          ctx.mesh)

  return Strategy("random", lambda key, ctx: None, no_info(pick))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _top_prob_score(score_fn, logits, budget, labeled):
  return top_k_unlabeled(score_fn(jax.nn.softmax(logits, -1)), labeled, budget)


@functools.partial(jax.jit, static_argnums=(0,))
def _prob_score(score_fn, logits):
  return parallel.constrain_rows(score_fn(jax.nn.softmax(logits, -1)))


def _sharded_top(ctx: Context, score_fn, values, budget):
  """Scores computed where ``values`` live, then the sharded top-k with global merge."""
  with parallel.use_mesh(ctx.mesh):
    s = score_fn(values)
  return sharded_select.top_k_unlabeled(s, ctx.labeled, budget, ctx.mesh)


def _prob_strategy(name, score_fn) -> Strategy:
  def score(key, ctx: Context):
    return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)[0]

  def pick(key, ctx: Context, logits, budget):
    if ctx.mesh is not None:
      return _sharded_top(ctx, functools.partial(_prob_score, score_fn), logits, budget)
    return _top_prob_score(score_fn, logits, budget, ctx.labeled)

  return Strategy(name, score, no_info(pick))


def margin_strategy() -> Strategy:
  """Smallest top-2 probability margin."""
  return _prob_strategy("margin", scores.margin_score)


def entropy_strategy() -> Strategy:
  """Largest predictive entropy."""
  return _prob_strategy("entropy", scores.entropy_score)


def least_confidence_strategy() -> Strategy:
  """Smallest maximum class probability."""
  return _prob_strategy("least_confidence", scores.least_confidence_score)


@functools.partial(jax.jit, static_argnums=(2,))
def _bald_pick(mc, labeled, budget):
  return top_k_unlabeled(scores.bald_score(mc), labeled, budget)


def bald_strategy(samples: int = 10) -> Strategy:
  """BALD mutual information from ``samples`` MC-dropout passes (needs a dropout model)."""
  def score(key, ctx: Context):
    return scores.mc_probs(ctx.net, ctx.variables, ctx.x, key, samples, ctx.chunk_size,
                           mesh=ctx.mesh)

  def pick(key, ctx: Context, mc, budget):
    if ctx.mesh is not None:
      return _sharded_top(ctx, jax.jit(scores.bald_score), mc, budget)
    return _bald_pick(mc, ctx.labeled, budget)

  return Strategy("bald", score, no_info(pick))


