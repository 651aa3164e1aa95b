"""BRAL-T's RL environment (Alg. 2, SPEC §1.3 step 4) and the 30-sampling training run.

One *sampling* draws disjoint ``L′, U′`` from the labeled rows, clusters ``L′`` into ``M``
and ``U′`` into ``C`` states, each ``U′_c`` into ``A_c`` actions, finds
``L^c_min = argmin_m W₂²(L′_m, U′_c)`` and rewards every action with
``−W₂²(U′^a_c, T′_c)`` where ``T′ = U′ ∩ T_i`` (``T′`` itself when ``T′_c`` is empty, A7).
Everything is jitted with static padded sizes: the labeled rows are passed compacted and
padded to ``[n_pad, D]`` with a validity mask, and every cloud given to Sinkhorn is a padded
(uniformly subsampled when larger than its cap) cluster.
"""

import functools
import math
from concurrent.futures import Executor
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jal import cluster
from jal.bralt import ot
from jal.bralt import reward_net as rn

__all__ = ["EnvConfig", "Caps", "cloud_cap", "Sample", "Clustering", "cluster_states",
           "sample_caps", "sample", "run_rl"]


class EnvConfig(NamedTuple):
  """Static settings of the environment and of the RL run (hashable: a jit static arg).

  Attributes:
    n_label_clusters: ``M`` (``None``: the number of classes; see :meth:`for_classes`).
    n_state_clusters: ``C`` (``None``: the number of classes).
    actions: ``A_c`` (5 in the paper).
    lprime_frac: ``|L′| = max(⌈lprime_frac·|L_i|⌉, 2M)`` (A1).
    max_points: hard cap on a cloud's size in a Sinkhorn solve (SPEC: 1000).
    cap_factor: a cluster's padded size is ``cap_factor ×`` the mean cluster size (capped by
      ``max_points``); bigger clusters are uniformly subsampled for the OT only.
    rel_epsilon: Sinkhorn ε relative to the mean cost (A3: 1e-3).
    max_iterations: Sinkhorn iteration cap.
    kmeans_iters: Lloyd iterations cap.
    ot_batching: how the Sinkhorn problems of one step are batched (``"auto"``, ``"map"``,
      ``"vmap"``; :mod:`jal.bralt.ot`).
    ot_momentum: Sinkhorn over-relaxation ω (``None``: plain Sinkhorn, the default).
    num_samplings: samplings per AL round (30).
    steps_per_sampling: SGD steps after each sampling (20).
    batch_size: SGD minibatch (100).
    learning_rate: SGD step size (0.01).
    scale_targets: divide rewards by the buffer's mean ``|R|`` (A9).
    lmin_pruning: find L^c_min by branch and bound on W₂² lower bounds
      (:func:`jal.bralt.ot.wasserstein_argmin`, same argmin) instead of all M·C solves.
  """
  n_label_clusters: int | None = None
  n_state_clusters: int | None = None
  actions: int = 5
  lprime_frac: float = 0.2
  max_points: int = 1000
  cap_factor: float = 2.0
  rel_epsilon: float = 1e-3
  max_iterations: int = 2000
  kmeans_iters: int = 50
  ot_batching: str = "auto"
  ot_momentum: float | None = None
  num_samplings: int = 30
  steps_per_sampling: int = 20
  batch_size: int = 100
  learning_rate: float = 0.01
  scale_targets: bool = True
  lmin_pruning: bool = True

  def for_classes(self, num_classes: int) -> "EnvConfig":
    """The config with ``M`` / ``C`` left at ``None`` set to ``num_classes``."""
    return self._replace(n_label_clusters=self.n_label_clusters or num_classes,
                         n_state_clusters=self.n_state_clusters or num_classes)


class Caps(NamedTuple):
  """Static padded cloud sizes: L clusters, U clusters, actions, T′_c and T′."""
  l: int
  u: int
  a: int
  tc: int
  t: int


class Clustering(NamedTuple):
  """States and actions of one (L, U) split.

  Attributes:
    states: ``[C·A, 4D]`` = [mean, var of L^c_min; mean, var of U_c] for each action's state.
    actions: ``[C·A, 2D]`` = [mean, var of U^a_c].
    act_counts: ``[C·A]`` action sizes (0 = empty action, invalid).
    act_assign: ``[n]`` action id ``c·A + a`` of each U row, −1 elsewhere.
    u_assign: ``[n]`` state cluster of each U row, −1 elsewhere.
    lmin: ``[C]`` index of L^c_min.
  """
  states: jax.Array
  actions: jax.Array
  act_counts: jax.Array
  act_assign: jax.Array
  u_assign: jax.Array
  lmin: jax.Array


def cloud_cap(cfg: EnvConfig, n_members: int, k: int) -> int:
  """Padded size for ``k`` clusters of ``n_members`` rows in total (a multiple of 8)."""
  c = math.ceil(cfg.cap_factor * n_members / max(k, 1) / 8) * 8
  return max(1, min(cfg.max_points, n_members, c))


def sample_caps(cfg: EnvConfig, n_pad: int, trust_cap: int) -> Caps:
  """Caps for a sampling over ``n_pad`` labeled rows with at most ``trust_cap`` trusted."""
  m, c = cfg.n_label_clusters, cfg.n_state_clusters
  n_l = min(n_pad, max(math.ceil(cfg.lprime_frac * n_pad), 2 * m))
  t = max(1, min(cfg.max_points, trust_cap, n_pad))
  return Caps(cloud_cap(cfg, n_l, m), cloud_cap(cfg, n_pad, c),
              cloud_cap(cfg, n_pad, c * cfg.actions), min(t, cloud_cap(cfg, trust_cap, c)), t)


def _gather(key, x, assignment, k, cap):
  idx, mask, counts = ot.gather_clusters(key, assignment, k, cap)
  return x[idx], mask, counts


def cluster_states(key: jax.Array, emb: jax.Array, l_mask: jax.Array, u_mask: jax.Array,
                   cfg: EnvConfig, caps: Caps) -> Clustering:
  """Clusters L into M and U into C × A_c, picks L^c_min and builds the features.

  Args:
    key: PRNG key.
    emb: ``[n, D]`` embeddings.
    l_mask: ``[n]`` bool rows of L (≥ M of them).
    u_mask: ``[n]`` bool rows of U (≥ C of them), disjoint from L.
    cfg: static settings.
    caps: static padded sizes (``caps.l``, ``caps.u`` are used).

  Returns:
    The :class:`Clustering`.
  """
  m, c, na = cfg.n_label_clusters, cfg.n_state_clusters, cfg.actions
  kl, ku, ka, kg1, kg2 = jax.random.split(key, 5)
  km = lambda k, mask, n_clusters: cluster.kmeans(k, emb, n_clusters, mask=mask,
                                                 n_iter=cfg.kmeans_iters).assignment
  if m == c:  # one compiled k-means for both (a lax.map over the two masks)
    l_assign, u_assign = jax.lax.map(lambda t: km(t[0], t[1], m),
                                     (jnp.stack([kl, ku]), jnp.stack([l_mask, u_mask])))
  else:
    l_assign, u_assign = km(kl, l_mask, m), km(ku, u_mask, c)

  # Every U_c into A_c actions: the C k-means problems share one Lloyd loop.
  local = cluster.grouped_kmeans(ka, emb, u_assign, c, na, n_iter=cfg.kmeans_iters).assignment
  act_assign = jnp.where(u_assign >= 0, u_assign * na + local, -1)

  lm, lv, _ = ot.segment_moments(emb, l_assign, m)
  um, uv, _ = ot.segment_moments(emb, u_assign, c)
  am, av, act_counts = ot.segment_moments(emb, act_assign, c * na)

  lx, lmask, _ = _gather(kg1, emb, l_assign, m, caps.l)
  ux, umask, _ = _gather(kg2, emb, u_assign, c, caps.u)
  if cfg.lmin_pruning:  # same argmin, ~10 of the M·C pairs solved (bounds prune the rest)
    lmin = ot.wasserstein_argmin(lx, ux, lmask, umask, cfg.rel_epsilon, cfg.max_iterations,
                                 batching=cfg.ot_batching, momentum=cfg.ot_momentum)[0]
  else:
    dist = ot.wasserstein_matrix(lx, ux, lmask, umask, cfg.rel_epsilon, cfg.max_iterations,
                                 batching=cfg.ot_batching, momentum=cfg.ot_momentum)
    lmin = jnp.argmin(dist, axis=0)                                  # [C]

  state_c = jnp.concatenate([lm[lmin], lv[lmin], um, uv], axis=1)    # [C, 4D]
  states = jnp.repeat(state_c, na, axis=0)                           # [C·A, 4D]
  actions = jnp.concatenate([am, av], axis=1)                        # [C·A, 2D]
  return Clustering(states, actions, act_counts.astype(jnp.int32), act_assign, u_assign, lmin)


def _split(key, valid, n_lprime):
  """Random disjoint L′ (``n_lprime`` rows) and U′ (the rest) of the valid rows."""
  prio = jnp.where(valid, jax.random.uniform(key, valid.shape), 2.0)
  rank = jnp.zeros(valid.shape, jnp.int32).at[jnp.argsort(prio)].set(
      jnp.arange(valid.shape[0], dtype=jnp.int32))
  l_mask = valid & (rank < n_lprime)
  return l_mask, valid & ~l_mask


class Sample(NamedTuple):
  """One sampling's tuples: ``states [P, 4D]``, ``actions [P, 2D]``, ``rewards [P]``,
  ``valid [P]`` with ``P = C·A_c``."""
  states: jax.Array
  actions: jax.Array
  rewards: jax.Array
  valid: jax.Array


def _sample(key, emb, valid, trust, cfg: EnvConfig, caps: Caps) -> Sample:
  m, c, na = cfg.n_label_clusters, cfg.n_state_clusters, cfg.actions
  k_split, k_clu, k_a, k_tc, k_t = jax.random.split(key, 5)
  n_valid = jnp.sum(valid.astype(jnp.int32))
  n_lp = jnp.maximum(jnp.ceil(cfg.lprime_frac * n_valid).astype(jnp.int32), 2 * m)
  n_lp = jnp.minimum(n_lp, n_valid - c)  # keep ≥ C rows in U′ (only bites on tiny L_i)
  l_mask, u_mask = _split(k_split, valid, n_lp)
  clu = cluster_states(k_clu, emb, l_mask, u_mask, cfg, caps)

  ax, amask, _ = _gather(k_a, emb, clu.act_assign, c * na, caps.a)      # [C·A, cap_a, D]
  t_mask = trust & u_mask                                               # T′ = U′ ∩ T
  tcx, tcmask, _ = _gather(k_tc, emb, jnp.where(t_mask, clu.u_assign, -1), c, caps.tc)
  tx, tmask, _ = _gather(k_t, emb, jnp.where(t_mask, 0, -1), 1, caps.t)
  # A7: an action is compared with T′_c, or with all of T′ when T′_c is empty.
  w = ot.wasserstein_with_fallback(ax, amask, tcx, tcmask, jnp.arange(c * na) // na, tx[0],
                                   tmask[0], cfg.rel_epsilon, cfg.max_iterations,
                                   batching=cfg.ot_batching, momentum=cfg.ot_momentum)
  ok = (clu.act_counts > 0) & jnp.isfinite(w)
  return Sample(clu.states, clu.actions, jnp.where(ok, -w, 0.0), ok)


@functools.partial(jax.jit, static_argnames=("cfg", "caps"))
def sample(key: jax.Array, emb: jax.Array, valid: jax.Array, trust: jax.Array,
           cfg: EnvConfig, caps: Caps) -> Sample:
  """One RL sampling on the labeled rows.

  Args:
    key: PRNG key.
    emb: ``[n_pad, D]`` embeddings of the labeled rows (compacted, padded).
    valid: ``[n_pad]`` bool, real rows.
    trust: ``[n_pad]`` bool, rows in the TrustSet T_i.
    cfg: static settings.
    caps: static padded cloud sizes (:func:`sample_caps`).

  Returns:
    :class:`Sample` with ``C·A_c`` tuples; invalid (empty) actions have reward 0 and
    ``valid`` False. Valid rewards are ``−W₂² ≤ 0``.
  """
  return _sample(key, emb, valid, trust, cfg, caps)


def run_rl(key: jax.Array, emb: jax.Array, valid: jax.Array, trust: jax.Array,
           cfg: EnvConfig, caps: Caps, executor: Executor | None = None
           ) -> tuple[rn.RewardModel, jax.Array, rn.Buffer]:
  """Trains a fresh reward net on ``cfg.num_samplings`` samplings (Alg. 2).

  Each sampling (one jitted :func:`sample`) pushes its valid tuples into the buffer, then
  ``cfg.steps_per_sampling`` SGD steps run as one jitted ``lax.scan``. The samplings do not
  depend on the reward net, so with an ``executor`` they are computed by its worker threads
  while this thread trains on them in order: XLA:CPU runs programs launched from different
  threads in parallel, but one thread's launches one after another (the Sinkhorn and
  k-means loops of one sampling use one core). Same keys, same order: the same result.

  Args:
    key: PRNG key.
    emb: ``[n_pad, D]`` labeled embeddings (compacted, padded).
    valid: ``[n_pad]`` bool.
    trust: ``[n_pad]`` bool TrustSet mask.
    cfg: static settings.
    caps: static padded cloud sizes.
    executor: optional thread pool for the samplings (``None``: this thread).

  Returns:
    ``(model, losses [num_samplings, steps], buffer)``.
  """
  d = emb.shape[1]
  p = cfg.n_state_clusters * cfg.actions
  k_init, k_run = jax.random.split(key)
  model = rn.init_reward_model(k_init, 4 * d, 2 * d, cfg.learning_rate)
  buf = rn.init_buffer(cfg.num_samplings * p, 4 * d, 2 * d)
  keys = [jax.random.split(k) for k in jax.random.split(k_run, cfg.num_samplings)]
  one = lambda k: jax.block_until_ready(sample(k, emb, valid, trust, cfg, caps))
  if executor is None:
    samples = (sample(ks, emb, valid, trust, cfg, caps) for ks, _ in keys)
  else:
    futures = [executor.submit(one, ks) for ks, _ in keys]
    samples = (f.result() for f in futures)
  losses = []
  for (_, kt), smp in zip(keys, samples):
    buf = _push(buf, smp)
    model, loss = rn.train_steps(kt, model, buf, cfg.steps_per_sampling, cfg.batch_size,
                                 cfg.learning_rate, cfg.scale_targets)
    losses.append(loss)
  return model, jnp.stack(losses), buf


@jax.jit
def _push(buf: rn.Buffer, smp: Sample) -> rn.Buffer:
  return rn.push(buf, smp.states, smp.actions, smp.rewards, smp.valid)
