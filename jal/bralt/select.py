"""BRAL-T selection on the real (L_i, U_i) (§4.2, SPEC A8): exactly ``b`` points.

The unlabeled pool is clustered into ``C`` states and ``C·A_c`` actions, the reward net
scores every (state, action), and the batch is filled by the quota rule of A8:

1. each state cluster gets a quota ``⌊b/C⌋`` (the ``b mod C`` extra points go, one each, to
   the clusters whose best action is predicted best — largest remainder with ties broken by
   reward), capped by the cluster's size;
2. a cluster fills its quota with its actions in descending predicted reward, taking a
   uniform random subset of the action that overflows the quota;
3. unused quota goes to the not yet taken points of the next-best actions globally.

``global_ranking=True`` skips the quotas (one global ranking of all actions). With a
``point_score`` per row, an overflowing action is filled with its highest-scoring rows
instead of a uniform subset (a reading of §4.2 that SPEC leaves open; issue 16).
"""

import functools

import jax
import jax.numpy as jnp

from jal.bralt import reward_net as rn
from jal.bralt.env import Caps, Clustering, EnvConfig, cluster_states

__all__ = ["action_takes", "fill_batch", "cluster_pool", "query", "select_batch"]


def _rank_in_group(key, group, k, score=None):
  """Rank of each row within its group (``group < 0`` rows get ``n``): uniformly random, or
  by descending ``score`` (ties in random order)."""
  n = group.shape[0]
  gid = jnp.where(group < 0, k, group).astype(jnp.int32)
  tie = jax.random.uniform(key, (n,))
  keys = (tie, gid) if score is None else (tie, -score, gid)
  order = jnp.lexsort(keys)
  counts = jnp.bincount(gid, length=k + 1)
  starts = jnp.cumsum(counts) - counts
  pos = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  return jnp.where(group < 0, n, pos - starts[gid]), counts[:k]


def action_takes(sizes: jax.Array, reward: jax.Array, n_states: int, budget: int,
                 global_ranking: bool = False) -> jax.Array:
  """How many points to take from each action under the quota rule (A8).

  Args:
    sizes: ``[C·A]`` int action sizes, action ``j`` belonging to state ``j // A``.
    reward: ``[C·A]`` predicted rewards (non-finite = worst).
    n_states: ``C`` (static).
    budget: ``b`` (static).
    global_ranking: one global ranking instead of per-state quotas.

  Returns:
    ``[C·A]`` int32 counts, ``0 ≤ take ≤ sizes``, summing to ``min(b, Σ sizes)``.
  """
  p = sizes.shape[0]
  na = p // n_states
  sizes = sizes.astype(jnp.int32)
  r = jnp.where(jnp.isfinite(reward), reward, -jnp.inf)
  r = jnp.where(sizes > 0, r, -jnp.inf)
  if global_ranking:
    first = jnp.zeros((p,), jnp.int32)
  else:
    rs = r.reshape(n_states, na)
    sz = sizes.reshape(n_states, na)
    # Extra b mod C points go to the states whose best action is predicted best.
    best = jnp.max(rs, axis=1)
    order_s = jnp.argsort(-best, stable=True)
    rank_s = jnp.zeros((n_states,), jnp.int32).at[order_s].set(jnp.arange(n_states))
    quota = budget // n_states + (rank_s < budget % n_states).astype(jnp.int32)
    quota = jnp.minimum(quota, jnp.sum(sz, axis=1))
    # Within a state: descending reward; take = clip(quota − size of better actions).
    order_a = jnp.argsort(-rs, axis=1, stable=True)
    sz_sorted = jnp.take_along_axis(sz, order_a, axis=1)
    before = jnp.cumsum(sz_sorted, axis=1) - sz_sorted
    take_sorted = jnp.clip(quota[:, None] - before, 0, sz_sorted)
    first = jnp.zeros_like(sz).at[jnp.arange(n_states)[:, None], order_a].set(take_sorted)
    first = first.reshape(p)
  left = budget - jnp.sum(first)
  rest = sizes - first
  order = jnp.argsort(-r, stable=True)
  rest_sorted = rest[order]
  before = jnp.cumsum(rest_sorted) - rest_sorted
  extra = jnp.zeros((p,), jnp.int32).at[order].set(jnp.clip(left - before, 0, rest_sorted))
  return (first + extra).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("n_states", "budget", "global_ranking"))
def fill_batch(key: jax.Array, act_assign: jax.Array, reward: jax.Array, n_states: int,
               budget: int, global_ranking: bool = False,
               point_score: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Picks ``budget`` rows by the quota rule from actions and their predicted rewards.

  Every row with ``act_assign ≥ 0`` (the unlabeled pool) belongs to exactly one action, so
  the result has exactly ``min(budget, #rows)`` distinct rows.

  Args:
    key: PRNG key (uniform subsets inside the overflowing actions).
    act_assign: ``[n]`` action id ``c·A + a`` per row, −1 for rows that may not be taken.
    reward: ``[C·A]`` predicted rewards.
    n_states: ``C``.
    budget: ``b``.
    global_ranking: see :func:`action_takes`.
    point_score: ``[n]`` optional; an action that overflows its take gives its
      highest-scoring rows instead of a uniform subset.

  Returns:
    ``(indices [budget] int32 (−1 past the end if the pool is smaller), selected [n] bool)``.
  """
  p = reward.shape[0]
  rank, sizes = _rank_in_group(key, act_assign, p, point_score)
  take = action_takes(sizes, reward, n_states, budget, global_ranking)
  selected = (act_assign >= 0) & (rank < take[jnp.clip(act_assign, 0, p - 1)])
  idx = jnp.nonzero(selected, size=budget, fill_value=-1)[0].astype(jnp.int32)
  return idx, selected


@functools.partial(jax.jit, static_argnames=("cfg", "caps"))
def cluster_pool(key: jax.Array, emb: jax.Array, labeled: jax.Array, cfg: EnvConfig,
                 caps: Caps) -> Clustering:
  """States and actions of the real ``(L_i, U_i)``: :func:`~jal.bralt.env.cluster_states`
  on the pool. Independent of the reward net, so it can run while the RL trains."""
  return cluster_states(key, emb, labeled, ~labeled, cfg, caps)


@functools.partial(jax.jit, static_argnames=("n_states", "budget", "global_ranking"))
def query(key: jax.Array, model: rn.RewardModel, clu: Clustering, n_states: int, budget: int,
          global_ranking: bool = False, point_score: jax.Array | None = None
          ) -> tuple[jax.Array, jax.Array]:
  """Predicted rewards of the pool's (state, action) pairs and the quota-filled batch
  (``point_score``: see :func:`fill_batch`).

  Returns:
    ``(indices [budget] int32, predicted rewards [C·A])``; empty actions predict ``-inf``.
  """
  pred = rn.predict_reward(model, clu.states, clu.actions)
  pred = jnp.where(clu.act_counts > 0, pred, -jnp.inf)
  idx, _ = fill_batch(key, clu.act_assign, pred, n_states, budget, global_ranking,
                      point_score)
  return idx, pred


def select_batch(key: jax.Array, model: rn.RewardModel, emb: jax.Array, labeled: jax.Array,
                 cfg: EnvConfig, caps: Caps, budget: int, global_ranking: bool = False,
                 point_score: jax.Array | None = None):
  """BRAL-T's query on the real pool: :func:`cluster_pool` then :func:`query`.

  Args:
    key: PRNG key.
    model: the trained reward net.
    emb: ``[n, D]`` pool embeddings.
    labeled: ``[n]`` bool (L_i; the rest is U_i).
    cfg: static settings (``M``, ``C``, ``A_c``, OT settings).
    caps: static padded cloud sizes (``caps.l``, ``caps.u``).
    budget: ``b``.
    global_ranking: see :func:`action_takes`.
    point_score: see :func:`fill_batch`.

  Returns:
    ``(indices [budget] int32, predicted rewards [C·A], clustering)``.
  """
  k_clu, k_fill = jax.random.split(key)
  clu = cluster_pool(k_clu, emb, labeled, cfg, caps)
  idx, pred = query(k_fill, model, clu, cfg.n_state_clusters, budget, global_ranking,
                    point_score)
  return idx, pred, clu
