"""Set-utility acquisition: RAMBO's greedy-margin (Alg. 2) and DULO's stochastic greedy.

Mean pooling is additive, so ``S ∪ batch`` is scored from ``Σψ(S) + Σψ(batch)`` and
``|S| + b`` without materialising masks; every round is one static-shape program.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jal.models.net import Net, Variables
from jal.rambo.utility_model import SetNet
from jal.scores import margin_score
from jal.train import predict

__all__ = ["GreedyTrace", "greedy_margin", "smallest_margin", "rambo_select", "null_select",
           "dulo_select"]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]  # (Σψ [m, E], sizes [m]) -> [m]


class GreedyTrace(NamedTuple):
  """What greedy-margin did, round by round (positions index the candidate array)."""
  selected: jax.Array  # [rounds * b] candidate positions, in the order added
  batches: jax.Array   # [rounds, M // b, b] the random split of R in each round
  scores: jax.Array    # [rounds, M // b] s(S_j ∪ batch)
  choice: jax.Array    # [rounds] index of the chosen batch


def greedy_margin(key: jax.Array, score_fn: ScoreFn, base_total: jax.Array,
                  base_count: jax.Array, cand: jax.Array, b: int, rounds: int,
                  m: int) -> GreedyTrace:
  """Greedy-margin over candidates sorted by increasing margin (Alg. 2).

  Each round, R = the first ``m`` not-yet-selected candidates (the ``m`` smallest margins
  among the unlabeled points), split at random into ``m // b`` batches of ``b``; the batch
  maximising ``s(S_j ∪ batch)`` joins S_j.

  Args:
    key: PRNG key.
    score_fn: traceable ``(Σψ [nb, E], sizes [nb]) -> [nb]`` set scores.
    base_total: ``[E]`` Σψ over the labeled set S₀.
    base_count: ``[]`` |S₀|.
    cand: ``[C, E]`` ψ of the candidates, sorted by increasing margin,
      ``C ≥ (rounds − 1)·b + m``.
    b: batch size.
    rounds: B / b.
    m: M, candidates per round (``≥ b``).

  Returns:
    ``GreedyTrace``.
  """
  c = cand.shape[0]
  nb = m // b
  if nb < 1 or c < (rounds - 1) * b + m:
    raise ValueError(f"need M >= b and at least (rounds-1)*b + M = {(rounds - 1) * b + m} "
                     f"candidates, got M={m}, b={b}, C={c}")
  return _greedy(key, score_fn, base_total, jnp.asarray(base_count, jnp.float32), cand,
                 b, rounds, m)


@jax.jit(static_argnums=(1, 5, 6, 7))
def _greedy(key, score_fn, base_total, base_count, cand, b, rounds, m):
  c = cand.shape[0]
  nb = m // b

  def body(carry, k):
    taken, total, count = carry
    r = jnp.argsort(jnp.where(taken, c + jnp.arange(c), jnp.arange(c)))[:m]
    batches = jax.random.permutation(k, r)[:nb * b].reshape(nb, b)
    totals = total[None, :] + jnp.sum(cand[batches], axis=1)
    scores = score_fn(totals, jnp.full((nb,), count + b))
    best = jnp.argmax(scores)
    taken = taken.at[batches[best]].set(True)
    return (taken, totals[best], count + b), (batches, scores, best)

  init = (jnp.zeros(c, bool), base_total, base_count)
  _, (batches, scores, choice) = jax.lax.scan(body, init, jax.random.split(key, rounds))
  selected = jnp.take_along_axis(batches, choice[:, None, None], axis=1)[:, 0].reshape(-1)
  return GreedyTrace(selected, batches, scores, choice)


def smallest_margin(net: Net, variables: Variables, x: jax.Array, labeled: jax.Array,
                    count: int, chunk_size: int = 1024) -> jax.Array:
  """Indices ``[count]`` of the unlabeled rows with the smallest top-2 margin, ascending."""
  logits, _ = predict(net, variables, x, chunk_size)
  neg_margin = margin_score(jax.nn.softmax(logits))
  return jax.lax.top_k(jnp.where(labeled, -jnp.inf, neg_margin), count)[1]


def _score_fn(set_net: SetNet, params) -> ScoreFn:
  return lambda total, size: set_net.head_from_sum(params, total, size).score


def rambo_select(key: jax.Array, set_net: SetNet, params, net: Net, variables: Variables,
                 x: jax.Array, labeled: jax.Array, budget: int, b: int, m: int,
                 chunk_size: int = 1024) -> np.ndarray:
  """RAMBO's acquisition of ``budget`` points with greedy-margin (R1: M = 10b; R9: logit).

  Args:
    key: PRNG key.
    set_net: utility network.
    params: trained utility parameters û.
    net: classifier f.
    variables: f trained on S₀ (the labeled rows); margins are computed once.
    x: pool ``[n, H, W, C]``.
    labeled: ``[n]`` bool, S₀.
    budget: B (a multiple of ``b``).
    b: batch size.
    m: M.
    chunk_size: rows per chunk for inference.

  Returns:
    ``[budget]`` unique unlabeled pool indices.
  """
  labeled, cand_idx, rounds, m = _candidates(net, variables, x, labeled, budget, b, m,
                                             chunk_size)
  lab_idx = jnp.nonzero(labeled, size=int(jnp.sum(labeled)))[0]
  h_lab = _elements(set_net, params, x[lab_idx], chunk_size)
  h_cand = _elements(set_net, params, x[cand_idx], chunk_size)
  trace = greedy_margin(key, _score_fn(set_net, params), jnp.sum(h_lab, 0),
                        lab_idx.shape[0], h_cand, b, rounds, m)
  return np.asarray(cand_idx[trace.selected])


def null_select(key: jax.Array, net: Net, variables: Variables, x: jax.Array,
                labeled: jax.Array, budget: int, b: int, m: int,
                chunk_size: int = 1024) -> np.ndarray:
  """Greedy-margin with an uninformative utility: every candidate batch scores the same.

  Each round then adds the first of the random batches of R (the ``m`` smallest margins not
  yet taken), i.e. a random ``b``-subset of R. With the key of ``rambo_select`` the rounds
  draw the same splits as RAMBO's until the choices differ: this is the control that shows
  what RAMBO's utility model adds to its candidates. Arguments as ``rambo_select``.

  Returns:
    ``[budget]`` unique unlabeled pool indices.
  """
  _, cand_idx, rounds, m = _candidates(net, variables, x, labeled, budget, b, m, chunk_size)
  trace = greedy_margin(key, _flat_score, jnp.zeros(1), 0, jnp.zeros((cand_idx.shape[0], 1)), b,
                        rounds, m)
  return np.asarray(cand_idx[trace.selected])


def _flat_score(total: jax.Array, size: jax.Array) -> jax.Array:
  del total
  return jnp.zeros(size.shape, jnp.float32)


def _candidates(net, variables, x, labeled, budget, b, m, chunk_size):
  """Checks; ``(labeled, candidate indices by increasing margin, rounds, M)``."""
  if budget % b:
    raise ValueError(f"budget {budget} must be a multiple of b = {b}")
  labeled = jnp.asarray(labeled)
  n_unl = int(labeled.shape[0] - jnp.sum(labeled))
  rounds = budget // b
  m = max(b, min(m, n_unl - (rounds - 1) * b))
  cand_idx = smallest_margin(net, variables, x, labeled, (rounds - 1) * b + m, chunk_size)
  return labeled, cand_idx, rounds, m


def _elements(set_net: SetNet, params, x: jax.Array, chunk_size: int) -> jax.Array:
  outs = [_psi(set_net, params, x[i:i + chunk_size]) for i in range(0, x.shape[0], chunk_size)]
  return jnp.concatenate(outs)


@jax.jit(static_argnums=(0,))
def _psi(set_net, params, x):
  return set_net.elements(params, x)


@jax.jit(static_argnums=(1, 5, 6, 7, 8))
def _dulo(key, set_net, params, x, labeled, b, rounds, candidates, n_lab):
  n = labeled.shape[0]

  def body(carry, k):
    taken, total, count = carry
    pick = jnp.argsort(jnp.where(taken, 2.0, jax.random.uniform(k, (n,))))[:candidates]
    h = set_net.elements(params, x[pick])
    gains = set_net.head_from_sum(params, total[None, :] + h,
                                  jnp.full((h.shape[0],), count + 1.0)).score
    top = jax.lax.top_k(gains, b)[1]
    taken = taken.at[pick[top]].set(True)
    return (taken, total + jnp.sum(h[top], 0), count + b), pick[top]

  lab_idx = jnp.nonzero(labeled, size=n_lab)[0]
  base = jnp.sum(set_net.elements(params, x[lab_idx]), 0)
  init = (labeled, base, jnp.float32(n_lab))
  return jax.lax.scan(body, init, jax.random.split(key, rounds))[1].reshape(-1)


def dulo_select(key: jax.Array, set_net: SetNet, params, x: jax.Array, labeled: jax.Array,
                budget: int, b: int, candidates: int) -> np.ndarray:
  """DULO's stochastic block-wise greedy with a regression utility model (Wang et al. 2023).

  Each of ``budget / b`` rounds samples ``candidates`` random unselected points, scores the
  marginal utility ``û(S ∪ {x})`` of each, and adds the ``b`` best.

  Args:
    key: PRNG key.
    set_net: utility network (trained as a regressor of validation accuracy).
    params: its parameters.
    x: pool ``[n, ...]``.
    labeled: ``[n]`` bool, the current set S.
    budget: B (a multiple of ``b``).
    b: block size.
    candidates: random candidates per round (``≥ b``).

  Returns:
    ``[budget]`` unique unlabeled pool indices.
  """
  if budget % b:
    raise ValueError(f"budget {budget} must be a multiple of b = {b}")
  labeled = jnp.asarray(labeled)
  n_lab = int(jnp.sum(labeled))
  rounds = budget // b
  candidates = max(b, min(candidates, labeled.shape[0] - n_lab - budget + b))
  return np.asarray(_dulo(key, set_net, params, x, labeled, b, rounds, candidates, n_lab))
