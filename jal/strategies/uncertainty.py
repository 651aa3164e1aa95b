"""Random and uncertainty strategies: Random, Margin, Entropy, LeastConfidence, BALD."""

import functools

import jax

from jal import cluster, parallel, scores
from jal.strategies.base import Context, Strategy, no_info
from jal.train import predict

__all__ = ["random_strategy", "margin_strategy", "entropy_strategy",
           "least_confidence_strategy", "bald_strategy"]


def random_strategy() -> Strategy:
  """Uniform sampling of unlabeled rows (DeepAL+ ``RandomSampling``)."""
  def pick(key, ctx: Context, aux, budget):
    # Under a mesh u is [n_pad]; top_k_unlabeled pads labeled (True) to match.
    u = cluster.uniform_scores(key, ctx.labeled.shape[0], mesh=ctx.mesh)
    return cluster.top_k_unlabeled(u, ctx.labeled, budget, mesh=ctx.mesh)

  return Strategy("random", lambda key, ctx: None, no_info(pick))


@functools.partial(jax.jit, static_argnums=(0,))
def _prob_score(score_fn, logits):
  return parallel.constrain_rows(score_fn(jax.nn.softmax(logits, -1)))


def _top(ctx: Context, score_fn, values, budget):
  """Scores computed where ``values`` live, then the top-k of the unlabeled rows."""
  with parallel.use_mesh(ctx.mesh):
    s = score_fn(values)
  return cluster.top_k_unlabeled(s, ctx.labeled, budget, mesh=ctx.mesh)


def _prob_strategy(name, score_fn) -> Strategy:
  def score(key, ctx: Context):
    return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)[0]

  def pick(key, ctx: Context, logits, budget):
    return _top(ctx, functools.partial(_prob_score, score_fn), logits, budget)

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


_bald_score = jax.jit(scores.bald_score)


def bald_strategy(samples: int = 10) -> Strategy:
  """BALD mutual information from ``samples`` MC-dropout passes.

  Raises (at ``score``):
    ValueError: for a model without dropout, whose passes would all be equal (mutual
      information 0 everywhere, picks in index order).
  """
  def score(key, ctx: Context):
    if not getattr(ctx.net, "dropout", 0.0) > 0:
      raise ValueError("bald needs a model with dropout > 0 (its MC-dropout passes are all "
                       "equal otherwise); make the net with dropout=, e.g. 0.25")
    return scores.mc_probs(ctx.net, ctx.variables, ctx.x, key, samples, ctx.chunk_size,
                           mesh=ctx.mesh)

  def pick(key, ctx: Context, mc, budget):
    return _top(ctx, _bald_score, mc, budget)

  return Strategy("bald", score, no_info(pick))


