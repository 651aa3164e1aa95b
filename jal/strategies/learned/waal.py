"""WAAL — Wasserstein Adversarial Active Learning (Shui et al., AISTATS 2020; BASELINES.md §2).

The classifier (trunk φ = the net's embedding, clf = its head) is trained jointly with a
critic ``D`` on the joint labeled/unlabeled stream (``common.joint_begin``). Per step:

1. φ/clf step, ``D`` frozen: ``CE(clf(z_L), y_L) + α·W`` with
   ``W = mean_U D(z_U) − γ·mean_L D(z_L)`` (the references' ``+α·μ_f·GP`` term is computed on
   no-grad features with ``D`` frozen and has no gradient; it is dropped).
2. Critic step, φ/clf frozen, features recomputed with the updated φ: minimise
   ``−α·W + gp_sign·α·μ_d·GP``, ``GP`` the mean of ``(‖∇_r D(r)‖ − 1)²`` over the rows
   ``r = {z_U + u·(z_L − z_U)} ∪ z_U ∪ z_L``. Both codebases code ``gp_sign = −1`` (the critic
   is rewarded for gradient norms far from 1); ``gp_sign = +1`` is WGAN-GP's penalty.

All means are weighted: the zero-weight top-up rows of the last step count nowhere (CE, both
means of ``W``, the gradient penalty). Every pass of φ is in train mode and updates the
BatchNorm statistics with labeled *and* unlabeled rows (the method needs it; 4 passes per
step, the references run 6 — the difference is in the running averages only).

Query (eval mode): ``u(x) = ½‖log p‖₂ + ½Σ_k(−log p_k)``, ``d(x) = D(φ(x))``, the ``budget``
unlabeled rows of smallest ``u − s·d`` (``s = 10``); the jal score is ``s·d − u``.

``variant="authors"`` (default) uses the WAAL authors' α = 2e-3 and γ = n_L / n_U;
``variant="deepalplus"`` DeepAL+'s α = 1e-3 and γ = 1. Both use the protocol's optimiser,
batch and epochs for φ, clf and ``D``, and DeepAL+'s critic (``D → 512 → 512 → 1``, sigmoid,
Kaiming-normal).
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jal import cluster, parallel
from jal.models.net import Net, Variables
from jal.strategies.base import Context, Strategy, no_info
from jal.strategies.learned.common import (
  commit_step,
  end_epoch,
  joint_batch,
  joint_begin,
  mlp_apply,
  mlp_init,
  replicate,
  run_epochs,
  use_fused,
  weighted_mean,
)
from jal.train import epoch, predict
from jal.train.config import TrainConfig, make_optimizer
from jal.train.trainer import FitResult, check_pool, place

__all__ = ["WaalConfig", "WaalState", "VARIANTS", "critic_init", "critic_apply",
           "input_gradients", "gradient_penalty", "critic_loss", "waal_scores",
           "fit_waal", "waal_strategy"]

VARIANTS = {"authors": {"alpha": 2e-3, "gamma": None}, "deepalplus": {"alpha": 1e-3, "gamma": 1.0}}
CRITIC_STREAM = 0x3AA1  # fold_in constant of the critic's initialisation key


@dataclasses.dataclass(frozen=True)
class WaalConfig:
  """WAAL's settings (hashable: a ``jit`` static argument).

  Attributes:
    alpha: α, weight of the Wasserstein term.
    gamma: γ, fixed, or ``None`` for ``n_L / n_U`` of the round (the authors).
    mu_d: gradient-penalty weight of the critic step (2 in both codebases).
    gp_sign: −1 as coded in both codebases, +1 for WGAN-GP's penalty.
    selection: ``s`` of the query (10).
    critic_width: hidden width of the critic (DeepAL+: 512).
    unlabeled_per_epoch: cap on the unlabeled rows per epoch (``None``: all of U, as the
      references; see ``common.joint_begin``).
  """
  alpha: float = 2e-3
  gamma: float | None = None
  mu_d: float = 2.0
  gp_sign: float = -1.0
  selection: float = 10.0
  critic_width: int = 512
  unlabeled_per_epoch: int | None = None


class WaalState(NamedTuple):
  train: epoch.TrainState
  critic: Any
  critic_opt: Any


def critic_init(key: jax.Array, dim: int, width: int = 512) -> list:
  """DeepAL+'s critic ``dim → width → width → 1`` (Kaiming-normal weights, zero biases)."""
  return mlp_init(key, (dim, width, width, 1), init="kaiming")


def critic_apply(params: list, z: jax.Array) -> jax.Array:
  """``D(z) ∈ (0, 1)`` ``[n]`` of features ``z [n, D]``."""
  return jax.nn.sigmoid(mlp_apply(params, z)[:, 0])


def input_gradients(params: list, rows: jax.Array) -> jax.Array:
  """Per-row ``∇_r D(r)`` ``[m, D]`` from one VJP of ``Σ_r D(r)`` (the critic has no
  BatchNorm, so rows are independent)."""
  return jax.grad(lambda r: jnp.sum(critic_apply(params, r)))(rows)


def _norm(g: jax.Array) -> jax.Array:
  """Row norms with a zero (not NaN) gradient at a zero row."""
  ss = jnp.sum(g * g, axis=-1)
  return jnp.where(ss > 0, jnp.sqrt(jnp.where(ss > 0, ss, 1.0)), 0.0)


def gradient_penalty(params: list, z_u: jax.Array, z_l: jax.Array, weights: jax.Array,
                     key: jax.Array) -> jax.Array:
  """Weighted mean of ``(‖∇D(r)‖ − 1)²`` over ``r = [z_U + u·(z_L − z_U); z_U; z_L]``
  (``u ~ U(0, 1)`` per row pair; rows paired by position; ``weights [M]`` for each third)."""
  u = jax.random.uniform(key, (z_u.shape[0], 1))
  rows = jnp.concatenate([z_u + u * (z_l - z_u), z_u, z_l])
  norms = _norm(input_gradients(params, rows))
  return weighted_mean((norms - 1.0) ** 2, jnp.tile(weights, 3))


def wasserstein(params: list, z_u: jax.Array, z_l: jax.Array, weights: jax.Array,
                gamma) -> jax.Array:
  """``W = mean_U D(z_U) − γ·mean_L D(z_L)`` (weighted means)."""
  return (weighted_mean(critic_apply(params, z_u), weights)
          - gamma * weighted_mean(critic_apply(params, z_l), weights))


def critic_loss(params: list, z_u, z_l, weights, key, gamma, hp: WaalConfig) -> jax.Array:
  """The critic's loss ``−α·W + gp_sign·α·μ_d·GP`` (as coded: ``gp_sign = −1``)."""
  return (-hp.alpha * wasserstein(params, z_u, z_l, weights, gamma)
          + hp.gp_sign * hp.alpha * hp.mu_d
          * gradient_penalty(params, z_u, z_l, weights, key))


def _init(net: Net, config: TrainConfig, hp: WaalConfig, key):
  train = epoch.init_state(net, config, key)
  critic = critic_init(jax.random.fold_in(key, CRITIC_STREAM), net.embed_dim, hp.critic_width)
  return WaalState(train, critic, make_optimizer(config).init(critic))


def _begin(hp: WaalConfig, batch_size: int, state: WaalState, key, mask):
  zero = jnp.float32(0.0)
  train = state.train._replace(correct=zero, seen=zero)
  return state._replace(train=train), joint_begin(key, mask, batch_size, hp.unlabeled_per_epoch)


def _step(net: Net, config: TrainConfig, hp: WaalConfig, state: WaalState, plan, s, x, y,
          gamma):
  tx = make_optimizer(config)
  bsz = config.batch_size
  i_l, i_u, w = joint_batch(plan, s, bsz)
  keys = jax.random.split(jax.random.fold_in(plan.key, s), 7)
  xl, yl, xu, w = (parallel.constrain_rows(a) for a in (x[i_l], y[i_l], x[i_u], w))
  if config.augment == "crop_flip":
    xl, xu = epoch.augment(keys[0], xl), epoch.augment(keys[1], xu)
  tr = state.train

  def fea_loss(params, extra):  # step 1: φ and clf, the critic frozen
    logits, z_l, extra = net.apply(Variables(params, extra), xl, train=True, key=keys[2])
    _, z_u, extra = net.apply(Variables(params, extra), xu, train=True, key=keys[3])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, yl)
    loss = (weighted_mean(ce, w)
            + hp.alpha * wasserstein(state.critic, z_u, z_l, w, gamma))
    return loss, (extra, jnp.sum((jnp.argmax(logits, -1) == yl) * w))

  grads, (extra, correct) = jax.grad(fea_loss, has_aux=True)(tr.variables.params,
                                                             tr.variables.extra)
  updates, opt_state = tx.update(grads, tr.opt_state, tr.variables.params)
  params = optax.apply_updates(tr.variables.params, updates)
  # Step 2: the critic, on features of the updated φ (train mode: BatchNorm updates).
  _, z_l, extra = net.apply(Variables(params, extra), xl, train=True, key=keys[4])
  _, z_u, extra = net.apply(Variables(params, extra), xu, train=True, key=keys[5])
  z_l, z_u = jax.lax.stop_gradient(z_l), jax.lax.stop_gradient(z_u)
  g_critic = jax.grad(critic_loss)(state.critic, z_u, z_l, w, keys[6], gamma, hp)
  c_updates, critic_opt = tx.update(g_critic, state.critic_opt, state.critic)
  new = WaalState(tr._replace(variables=Variables(params, extra), opt_state=opt_state,
                              correct=tr.correct + correct, seen=tr.seen + jnp.sum(w)),
                  optax.apply_updates(state.critic, c_updates), critic_opt)
  return commit_step(new, state, (s < plan.steps) & ~tr.done)


def _fused(net, config, hp, state, key, x, y, mask, gamma):
  state, plan = _begin(hp, config.batch_size, state, key, mask)
  state = jax.lax.fori_loop(
      0, plan.steps, lambda s, st: _step(net, config, hp, st, plan, s, x, y, gamma), state)
  return end_epoch(config, state)


_init_jit = jax.jit(_init, static_argnums=(0, 1, 2))
_begin_jit = jax.jit(_begin, static_argnums=(0, 1), donate_argnums=(2,))
_step_jit = jax.jit(_step, static_argnums=(0, 1, 2), donate_argnums=(3,))
_end_jit = jax.jit(end_epoch, static_argnums=(0,), donate_argnums=(1,))
_fused_jit = jax.jit(_fused, static_argnums=(0, 1, 2), donate_argnums=(3,))


def fit_waal(key: jax.Array, net: Net, config: TrainConfig, x: jax.Array, y: jax.Array,
             mask: jax.Array, hp: WaalConfig = WaalConfig(), *, mesh=None) -> FitResult:
  """Trains a fresh classifier and critic on the joint stream (§2.3–2.4).

  Args:
    key: PRNG key (the classifier's initialisation is that of ``jal.fit(key, …)``).
    net: the classifier; the critic reads its embedding.
    config: the protocol's optimiser (for φ, clf and the critic), batch ``M`` (per stream),
      epochs and stopping rule; SuperLoss is not supported.
    x: pool ``[n, H, W, C]``; y: ``[n]`` labels; mask: ``[n]`` bool labeled set (needs at
      least one unlabeled row).
    hp: WAAL's settings.
    mesh: optional ``jal.parallel`` mesh.

  Returns:
    ``FitResult`` whose ``extra`` is ``{"critic": params}``.
  """
  check_pool(x, y, mask, net.num_classes)
  if config.superloss:
    raise ValueError("waal trains with cross-entropy; set superloss off")
  n_lab = int(np.count_nonzero(np.asarray(mask)))
  n_unl = int(np.size(mask)) - n_lab
  if n_unl < 1:
    raise ValueError("waal needs unlabeled rows to train on")
  gamma = jnp.float32(n_lab / n_unl if hp.gamma is None else hp.gamma)
  k_init, k_train = jax.random.split(key)
  with parallel.use_mesh(mesh):
    state = _init_jit(net, config, hp, k_init)
    state, x, y, mask = place(mesh, state, x, y, mask)
    bsz = config.batch_size
    state = run_epochs(
        state, k_train, config.epochs,
        begin=lambda st, k: _begin_jit(hp, bsz, st, k, mask),
        step=lambda st, plan, s: _step_jit(net, config, hp, st, plan, s, x, y, gamma),
        end=lambda st: _end_jit(config, st),
        fused=(lambda st, k: _fused_jit(net, config, hp, st, k, x, y, mask, gamma))
        if use_fused(config) else None,
        done=(lambda st: bool(st.train.done)) if config.stop_train_acc is not None else None)
  tr = state.train
  return FitResult(tr.variables, tr.epoch, tr.train_acc, extra={"critic": state.critic})


@jax.jit
def waal_scores(logits: jax.Array, d: jax.Array, selection: float = 10.0) -> jax.Array:
  """jal's WAAL score ``s·d − u`` ``[n]`` (larger = pick; the references pick the smallest
  ``u − s·d``), ``u = ½‖log p‖₂ + ½Σ_k(−log p_k)`` from ``log_softmax(logits)``."""
  logp = jax.nn.log_softmax(logits, -1)
  u = 0.5 * jnp.sqrt(jnp.sum(logp * logp, -1)) + 0.5 * jnp.sum(-logp, -1)
  return selection * d - u


_critic_jit = jax.jit(critic_apply)


def waal_strategy(variant: str = "authors", alpha: float | None = None, gp_sign: float = -1.0,
                  mu_d: float = 2.0, selection: float = 10.0, critic_width: int = 512,
                  unlabeled_per_epoch: int | None = None) -> Strategy:
  """WAAL (BASELINES.md §2).

  Args:
    variant: ``"authors"`` (α = 2e-3, γ = n_L / n_U) or ``"deepalplus"`` (α = 1e-3, γ = 1).
    alpha: overrides the variant's α.
    gp_sign: −1 as both codebases code the critic's penalty, +1 for WGAN-GP's.
    mu_d, selection, critic_width, unlabeled_per_epoch: see ``WaalConfig``.
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
  if gp_sign not in (-1, 1):
    raise ValueError(f"gp_sign must be -1 or +1, got {gp_sign}")
  if unlabeled_per_epoch is not None and int(unlabeled_per_epoch) < 1:
    raise ValueError(f"unlabeled_per_epoch must be >= 1 (or None), got {unlabeled_per_epoch}")
  v = VARIANTS[variant]
  hp = WaalConfig(alpha=float(v["alpha"] if alpha is None else alpha), gamma=v["gamma"],
                  mu_d=float(mu_d), gp_sign=float(gp_sign), selection=float(selection),
                  critic_width=int(critic_width),
                  unlabeled_per_epoch=None if unlabeled_per_epoch is None
                  else int(unlabeled_per_epoch))

  def fit(key, net, config, x, y, labeled, *, mesh=None):
    return fit_waal(key, net, config, x, y, labeled, hp, mesh=mesh)

  def score(key, ctx: Context):
    if not isinstance(ctx.fit_extra, dict) or "critic" not in ctx.fit_extra:
      raise ValueError("waal scores with the critic of its own fit; train the model with "
                       "strategy.fit (jal.run_loop does)")
    logits, emb = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)
    with parallel.use_mesh(ctx.mesh):
      d = _critic_jit(replicate(ctx.fit_extra["critic"], ctx.mesh), emb)
      return waal_scores(logits, d, hp.selection)

  def pick(key, ctx: Context, scores, budget):
    return cluster.top_k_unlabeled(scores, ctx.labeled, budget, mesh=ctx.mesh)

  return Strategy("waal", score, no_info(pick), fit=fit)
