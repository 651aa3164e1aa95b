"""BRAL-T and its ablations as ``jal.strategies.Strategy`` objects.

- ``bral_t``: TrustSet (σ*·EL2N, class-balanced top ``⌈b/K⌉``) → 30 RL samplings on the
  labeled set → quota selection on the pool (SPEC §1.3).
- ``bral_t_wo_cl``: the same with plain EL2N scores (train the target model without
  SuperLoss too, via the experiment config).
- ``bral_diffset``: the policy learns from the second-best score group of size ``b`` of
  the globally sorted labeled set instead of the TrustSet.
- ``pseudo_score``: no RL; σ*·EL2N with pseudo-labels (argmax) on U, class-balanced (by
  pseudo-label) top scores, topped up by the next-best scores.
- ``gradnd_gt``: oracle; class-balanced top exact GraNd on U with the *true* labels.

``bral_t``'s ``agent_rounds`` / ``agent_file`` / ``agent_dir`` reuse the reward net across
rounds or runs (App. C.3, Table 7; :mod:`jal.bralt.agent`).
"""

import atexit
import concurrent.futures
import functools
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from jal.bralt import agent as agent_lib
from jal.bralt import env as env_lib
from jal.bralt import select as select_lib
from jal.bralt import trustset
from jal.parallel.host_threads import default_workers
from jal.scores import grand
from jal.strategies.base import NEXT_STATE, Context, Strategy, no_info
from jal.train import predict

__all__ = ["bral_t_strategy", "bral_t_wo_cl_strategy", "bral_diffset_strategy",
           "pseudo_score_strategy", "gradnd_gt_strategy", "balanced_top", "diffset_mask",
           "rl_select", "BRALT_STRATEGIES", "FILLS"]

FILLS = ("uniform", "score")


@functools.partial(jax.jit, static_argnames=("num_classes", "per_class", "budget"))
def balanced_top(scores: jax.Array, cls: jax.Array, mask: jax.Array, num_classes: int,
                 per_class: int, budget: int) -> jax.Array:
  """``[budget]`` rows: the top-``per_class`` of each class among ``mask`` rows by score,
  then (if classes run short) the next-highest scores of any class."""
  sel = trustset.trustset_mask(scores, cls, mask, num_classes, per_class)
  s = jnp.where(mask, scores, -jnp.inf)
  order = jnp.lexsort((-s, ~sel, ~mask))  # masked first, then the balanced picks, then score
  return order[:budget].astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("budget", "group"))
def diffset_mask(scores: jax.Array, labeled: jax.Array, budget: int, group: int = 1
                 ) -> jax.Array:
  """Rows of score group ``group`` (0 = best) of size ``budget`` of the labeled set."""
  s = jnp.where(labeled, scores, -jnp.inf)
  order = jnp.argsort(-s, stable=True)
  rank = jnp.zeros(s.shape, jnp.int32).at[order].set(jnp.arange(s.shape[0], dtype=jnp.int32))
  return labeled & (rank >= group * budget) & (rank < (group + 1) * budget)


def _pad_rows(n: int, base: int) -> int:
  """Geometric buckets ``base · 2^j ≥ n``: a run over rounds compiles ``O(log n)`` times."""
  size = max(1, base)
  while size < n:
    size *= 2
  return size


def _bucket_rows(n_pad: int, base: int) -> int:
  """Row count the caps are sized for: the smallest labeled set of ``n_pad``'s bucket."""
  return n_pad if n_pad <= base else n_pad // 2 + 1


_WARM_UPS: list[threading.Thread] = []


@atexit.register
def _join_warm_ups():  # never leave a compile running while the interpreter shuts down
  while _WARM_UPS:
    _WARM_UPS.pop().join()


def _warm_up(key, emb, n_pad, pad_to, cfg, trust_cap):
  """Compiles (and once runs) the sampling program of ``n_pad`` labeled rows on a thread."""
  def body():
    rows = jnp.arange(n_pad) % emb.shape[0]
    valid = jnp.asarray(np.arange(n_pad) < n_pad // 2 + 1)
    caps = env_lib.sample_caps(cfg, _bucket_rows(n_pad, pad_to), trust_cap)
    jax.block_until_ready(env_lib.sample(key, emb[rows], valid, valid, cfg, caps))
  thread = threading.Thread(target=body, daemon=True, name="bralt-warm-up")
  thread.start()
  _WARM_UPS.append(thread)


def rl_select(key: jax.Array, emb: jax.Array, labeled: np.ndarray, trust: np.ndarray,
              cfg: env_lib.EnvConfig, budget: int, trust_cap: int,
              global_ranking: bool = False, pad_to: int = 256, workers: int | None = None,
              next_labeled: int | None = None, model=None,
              point_score: jax.Array | None = None):
  """Runs the RL on the labeled rows and selects ``budget`` unlabeled rows.

  Args:
    key: PRNG key.
    emb: ``[n, D]`` pool embeddings.
    labeled: ``[n]`` bool (concrete).
    trust: ``[n]`` bool rows the rewards are measured against (⊂ labeled).
    cfg: environment / RL settings.
    budget: ``b``.
    trust_cap: static bound on ``trust.sum()`` (padded size of the T′ cloud).
    global_ranking: one global ranking instead of A8's quotas.
    pad_to: labeled rows are padded to ``pad_to · 2^j`` rows (``O(log n)`` compiles per run);
      padded cloud sizes are set from the smallest labeled set of that bucket.
    workers: threads computing the samplings and the pool clustering while the reward net
      trains (``None``: the CPU cores on a CPU backend, else 1 = no threads).
    next_labeled: labeled count of the next round; when it falls in a new bucket, that
      bucket's sampling program is compiled on a background thread (during the next
      round's training). The next call waits for it first, so what is left of the compile
      is counted in its RL seconds.
    model: a trained reward net (``RewardModel``) to select with instead of training one
      (agent reuse); its info then has empty ``losses``.
    point_score: ``[n]`` optional per-row score; an overflowing action gives its
      highest-scoring rows instead of a uniform subset (``select.fill_batch``).

  Returns:
    ``(indices [≤ budget] np.int64, info)`` with ``info`` holding the reward-net losses
    ``[samplings, steps]``, the predicted rewards ``[C·A]``, the pool's action ids
    ``act_assign [n]``, the reward net ``model`` and the RL / selection seconds (with workers,
    the pool clustering overlaps the RL; selection seconds are what is left after the reward
    net is trained).

  Raises:
    ValueError: if there are fewer than ``M + C`` labeled or ``C`` unlabeled rows.
  """
  labeled = np.asarray(labeled, bool)
  m, c = cfg.n_label_clusters, cfg.n_state_clusters
  idx_l = np.flatnonzero(labeled)
  n_l, n_u = idx_l.size, labeled.size - idx_l.size
  if n_l < m + c or n_u < c:
    raise ValueError(f"BRAL-T needs >= M + C = {m + c} labeled and >= C = {c} unlabeled "
                     f"rows, got {n_l} and {n_u}")
  n_pad = _pad_rows(n_l, pad_to)
  rows = np.pad(idx_l, (0, n_pad - n_l))
  valid = np.arange(n_pad) < n_l
  trust_l = np.asarray(trust, bool)[rows] & valid
  caps = env_lib.sample_caps(cfg, _bucket_rows(n_pad, pad_to), trust_cap)
  t0 = time.perf_counter()
  _join_warm_ups()
  k_rl, k_sel = jax.random.split(key)
  k_clu, k_fill = jax.random.split(k_sel)
  # Selection clouds are sized from the (fixed) pool size, so the selection program
  # compiles once per run whatever the labeled count (larger clusters are subsampled).
  n = labeled.size
  sel_caps = env_lib.Caps(env_lib.cloud_cap(cfg, n, m), env_lib.cloud_cap(cfg, n, c), 1, 1, 1)
  cluster = lambda: jax.block_until_ready(
      select_lib.cluster_pool(k_clu, emb, jnp.asarray(labeled), cfg, sel_caps))
  rl_args = (k_rl, emb[jnp.asarray(rows)], jnp.asarray(valid), jnp.asarray(trust_l), cfg, caps)
  n_workers = default_workers(workers)
  losses = np.zeros((0, 0), np.float32)
  if model is not None:  # a reused agent: no RL this round
    t1 = time.perf_counter()
    clu = cluster()
  elif n_workers > 1:
    # The pool clustering and the 30 samplings are independent of the reward net: worker
    # threads compute them while this thread trains it (same results, in parallel).
    ex = concurrent.futures.ThreadPoolExecutor(n_workers)
    try:
      clu_future = ex.submit(cluster)
      model, losses, _ = env_lib.run_rl(*rl_args, executor=ex)
      jax.block_until_ready(model)
      t1 = time.perf_counter()
      clu = clu_future.result()
    finally:  # on an error, queued samplings are dropped instead of run to the end
      ex.shutdown(wait=True, cancel_futures=True)
  else:
    model, losses, _ = env_lib.run_rl(*rl_args)
    jax.block_until_ready(model)
    t1 = time.perf_counter()
    clu = cluster()
  idx, pred = select_lib.query(k_fill, model, clu, c, budget, global_ranking, point_score)
  idx = np.asarray(idx)
  if next_labeled is not None and _pad_rows(next_labeled, pad_to) != n_pad:
    _warm_up(jax.random.split(k_rl)[0], emb, _pad_rows(next_labeled, pad_to), pad_to, cfg,
             trust_cap)
  return idx[idx >= 0], {"losses": np.asarray(losses), "pred": np.asarray(pred),
                         "act_assign": np.asarray(clu.act_assign), "model": model,
                         "rl_seconds": t1 - t0, "selection_seconds": time.perf_counter() - t1}


def _round_info(info: dict) -> dict:
  """JSON-able per-round diagnostics: phase seconds and the reward net's learning curve."""
  losses = info["losses"]
  return {"rl_seconds": info["rl_seconds"], "selection_seconds": info["selection_seconds"],
          "reward_loss_first": float(np.mean(losses[0])),
          "reward_loss_last": float(np.mean(losses[-1])),
          "pred_reward_spread": float(np.ptp(info["pred"][np.isfinite(info["pred"])]))
          if np.isfinite(info["pred"]).any() else 0.0}


def _pool_pass(mode: str, tau, lam, point_scores: bool = False):
  """BRAL-T's pool pass: embeddings ``[n, D]`` and TrustSet scores ``[n]`` of the labeled
  rows, split along ``ctx.mesh``'s ``data`` axis when there is one; with ``point_scores``
  also every row's score against its pseudo-label (argmax), ``"point_scores" [n]``."""
  def score(key, ctx: Context):
    logits, emb = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)
    s = trustset.trust_scores(ctx.net, ctx.variables, ctx.x, ctx.y, ctx.labeled, mode, tau,
                              lam, ctx.chunk_size, logits=logits)
    out = {"emb": emb, "scores": s}
    if point_scores:
      pseudo = jnp.argmax(logits, axis=-1).astype(jnp.int32)
      out["point_scores"] = trustset.scores_from_logits(logits, pseudo, _plain(mode), tau, lam)
    return out
  return score


def _plain(mode: str) -> str:
  """The logits-only form of a TrustSet score mode (GraNd needs gradients: its EL2N bound)."""
  return "el2n" if mode == "grand" else mode


def env_config(env: "env_lib.EnvConfig | dict | None") -> env_lib.EnvConfig:
  """``env`` as an ``EnvConfig`` (a dict of its fields, as configs write it, or ``None`` for
  the paper's defaults).

  Raises:
    ValueError: for a field ``EnvConfig`` does not have.
  """
  if env is None:
    return env_lib.EnvConfig()
  if isinstance(env, env_lib.EnvConfig):
    return env
  unknown = set(env) - set(env_lib.EnvConfig._fields)
  if unknown:
    raise ValueError(f"unknown BRAL-T env settings {sorted(unknown)}; EnvConfig has "
                     f"{list(env_lib.EnvConfig._fields)}")
  return env_lib.EnvConfig(**env)


def bral_t_strategy(env: "env_lib.EnvConfig | dict | None" = None, *,
                    score_mode: str = "superloss_el2n", tau: float | None = None,
                    lam: float = 1.0, global_ranking: bool = False, fill: str = "uniform",
                    pad_to: int = 256,
                    trust_group: str = "trust", name: str = "bral_t",
                    full_info: bool = False, workers: int | None = None,
                    agent_rounds=None, agent_file: str | None = None,
                    agent_dir: str | None = None) -> Strategy:
  """BRAL-T (Batch Reinforcement Active Learning with TrustSet).

  Args:
    env: the environment and RL settings (``jal.bralt.env.EnvConfig``, or a dict of its
      fields): ``M``, ``C`` (``None`` → number of classes), ``A_c``, Sinkhorn, samplings,
      reward-net SGD. ``None``: the paper's defaults.
    score_mode: TrustSet score, ``"superloss_el2n"`` (A5), ``"el2n"`` or ``"grand"``.
    tau: SuperLoss τ (``None`` → ``log K``).
    lam: SuperLoss λ (use the value the target model was trained with).
    global_ranking: A8's alternative (one global ranking, no quotas).
    fill: how an action that holds more points than its take is drawn from: ``"uniform"``
      (SPEC A8) or ``"score"`` (its unlabeled rows with the highest TrustSet score against
      their pseudo-labels, the ``pseudo_score`` ablation's score; issue 16's reading).
    pad_to: labeled rows are padded to ``pad_to · 2^j`` rows.
    trust_group: ``"trust"`` (TrustSet) or ``"diffset"`` (second-best global group).
    name: the strategy's name.
    full_info: ``pick`` also returns the arrays of :func:`rl_select`'s info (predicted
      rewards, action ids, losses) and the TrustSet mask, for diagnostics; the default
      returns only JSON-able per-round figures.
    workers: threads for the samplings and the pool clustering (:func:`rl_select`).
    agent_rounds: agent reuse (App. C.3, Table 7): the query rounds (0-based, e.g. ``(0, 20)``
      or ``"0,20"``) in which a fresh reward net is trained; the other rounds reuse the last
      one. ``None``: a fresh one every round (the paper's BRAL-T).
    agent_file: a saved agent (``agent_dir`` of another run) used in every round; no RL.
    agent_dir: where to save every agent this run trains (``agent_round<r>.msgpack``).

  Returns:
    The ``Strategy``; its pool pass (embeddings, TrustSet scores) honours ``ctx.mesh``. With
    an agent option the strategy has a ``state`` that says whether this round trains an
    agent (with the keys of the plain BRAL-T round) or reuses the one it holds; ``pick``
    returns a newly trained agent as ``info[NEXT_STATE]``, which the loop checkpoints after
    the selection, so a resumed run reuses the same agent.

  Raises:
    ValueError: for an unknown ``trust_group`` or ``env`` field, or bad ``agent_rounds``.
  """
  if trust_group not in ("trust", "diffset"):
    raise ValueError(f"trust_group must be 'trust' or 'diffset', got {trust_group!r}")
  if fill not in FILLS:
    raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
  env = env_config(env)
  agent_rounds = agent_lib.parse_rounds(agent_rounds)
  pool_pass = _pool_pass(score_mode, tau, lam, point_scores=fill == "score")

  def pick(key, ctx: Context, aux, budget):
    k = ctx.num_classes
    cfg = env.for_classes(k)
    per_class = trustset.per_class_size(budget, k)
    if trust_group == "trust":
      trust = trustset.trustset_mask(aux["scores"], ctx.y, ctx.labeled, k, per_class)
      trust_cap = per_class * k
    else:
      trust = diffset_mask(aux["scores"], ctx.labeled, budget, 1)
      trust_cap = budget
    st = ctx.state
    reuse = st is not None and not int(st["train"])
    model = None
    if reuse:
      agent_lib.check_embed_dim(st, aux["emb"].shape[1], agent_file or "the agent")
      model = agent_lib.from_state(st, cfg.learning_rate)
    idx, info = rl_select(key, aux["emb"], np.asarray(ctx.labeled), np.asarray(trust), cfg,
                          budget, trust_cap, global_ranking, pad_to, workers,
                          next_labeled=None if reuse else int(np.sum(ctx.labeled)) + budget,
                          point_score=aux.get("point_scores"),
                          model=model)
    trained = info.pop("model")
    extra = {"trust": np.asarray(trust)} if full_info else {}
    if st is not None and not reuse:
      # The agent trained now is the state the next rounds reuse; pick hands it back (state()
      # cannot train it: the TrustSet size depends on the budget, which only pick sees).
      st = {**st, **agent_lib.to_state(trained)}
      extra[NEXT_STATE] = st
      if agent_dir is not None:
        agent_lib.save_agent(agent_lib.agent_path(agent_dir, int(st["round"])), st)
    if reuse:
      return idx, {"rl_seconds": info["rl_seconds"], "agent_round": int(st["agent_round"]),
                   "selection_seconds": info["selection_seconds"], **extra}
    return idx, {**(info if full_info else {}), **_round_info(info), **extra}

  def state(key, ctx: Context, prev):
    r = 0 if prev is None else int(prev["round"]) + 1
    if agent_file is not None:  # another run's agent, every round
      return {**(agent_lib.load_agent(agent_file) if prev is None else prev), "round": r,
              "agent_round": -1, "train": 0}
    if prev is None or agent_rounds is None or r in agent_rounds:
      return {"round": r, "agent_round": r, "train": 1}  # pick trains and stores the agent
    return {**prev, "round": r, "train": 0}

  if agent_rounds is None and agent_file is None and agent_dir is None:
    return Strategy(name, pool_pass, pick)
  return Strategy(name, pool_pass, pick, state=state)


def bral_t_wo_cl_strategy(**kwargs) -> Strategy:
  """Ablation "w/o CL": BRAL-T with plain (cross-entropy) EL2N TrustSet scores."""
  return bral_t_strategy(**{"name": "bral_t_wo_cl", **kwargs, "score_mode": "el2n"})


def bral_diffset_strategy(**kwargs) -> Strategy:
  """Ablation "BRAL-DiffSet": the policy learns from the second-best group of size ``b``."""
  return bral_t_strategy(**{"name": "bral_diffset", **kwargs, "trust_group": "diffset"})


def pseudo_score_strategy(tau: float | None = None, lam: float = 1.0,
                          score_mode: str = "superloss_el2n") -> Strategy:
  """Ablation "PseudoScore": σ*·EL2N with argmax pseudo-labels on U, class-balanced top."""
  def score(key, ctx: Context):
    logits, _ = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)
    pseudo = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    s = trustset.scores_from_logits(logits, pseudo, score_mode, tau, lam)
    return {"scores": s, "pseudo": pseudo}

  def pick(key, ctx: Context, aux, budget):
    k = ctx.num_classes
    return balanced_top(aux["scores"], aux["pseudo"], ~ctx.labeled, k,
                        trustset.per_class_size(budget, k), budget)

  return Strategy("pseudo_score", score, no_info(pick))


def gradnd_gt_strategy(chunk_size: int = 64) -> Strategy:
  """Oracle "GradNd-GT" (Fig. 8): class-balanced top GraNd on U with the **true** labels."""
  def score(key, ctx: Context):
    unl = np.flatnonzero(~np.asarray(ctx.labeled))
    g = grand(ctx.net, ctx.variables, ctx.x[unl], ctx.y[unl], chunk_size)
    return jnp.full(ctx.labeled.shape, -jnp.inf).at[unl].set(g)

  def pick(key, ctx: Context, aux, budget):
    k = ctx.num_classes
    return balanced_top(aux, ctx.y, ~ctx.labeled, k, trustset.per_class_size(budget, k),
                        budget)

  return Strategy("gradnd_gt", score, no_info(pick))


BRALT_STRATEGIES = {
    "bral_t": bral_t_strategy,
    "bral_t_wo_cl": bral_t_wo_cl_strategy,
    "bral_diffset": bral_diffset_strategy,
    "pseudo_score": pseudo_score_strategy,
    "gradnd_gt": gradnd_gt_strategy,
}
