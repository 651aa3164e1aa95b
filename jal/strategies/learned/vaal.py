"""VAAL — Variational Adversarial Active Learning (Sinha et al., ICCV 2019; BASELINES.md §3).

The classifier is untouched (``jal.fit``). At query time a fresh VAE and a discriminator
``D`` (latent → 512 → 512 → 1, sigmoid) are trained on the joint labeled/unlabeled stream
(``common.joint_begin``; DeepAL+'s schedule: ``vae_epochs`` epochs of
``⌈max(n_L, n_U)/M⌉`` steps), per step:

* ``vae_steps`` VAE steps on the batch: ``ℒ_vae(x_L) + ℒ_vae(x_U) + λ_adv·[BCE(D(μ_L), 1) +
  BCE(D(μ_U), 1)]``, ``ℒ_vae = MSE_mean + β·KL_sum`` (the KL summed over the batch, as coded);
* ``adv_steps`` discriminator steps on ``μ`` recomputed without gradient:
  ``BCE(D(μ_L), 1) + BCE(D(μ_U), t_U)``.

The query scores ``D(μ(x))`` in eval mode. ``variant="authors"`` (default): ``t_U = 0`` and
the ``budget`` unlabeled rows of **lowest** ``D`` (the most confidently unlabeled; jal score
``−D``). ``variant="deepalplus"`` reproduces DeepAL+'s two bugs (§3.5): ``t_U = 1`` and the
**highest** ``D`` (score ``+D``), with its Adam lr 1e-3 and two discriminator steps.

Padding rows (the top-up of the last step) have zero weight in the MSE means, the KL sums and
the BCE means. BatchNorm (``"conv32"`` VAE only) runs in train mode on separate labeled and
unlabeled passes, as in the references; the classifier's BatchNorm is never touched.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jal import cluster, parallel
from jal.models.net import Variables
from jal.parallel.chunking import chunked_map
from jal.strategies.base import Context, Strategy, no_info
from jal.strategies.learned.common import (
  joint_batch,
  joint_begin,
  mlp_apply,
  mlp_init,
  replicate,
  run_epochs,
  use_fused,
  weighted_mean,
)
from jal.strategies.learned.vae_nets import VaeNet, make_vae, vae_kind

__all__ = ["VaalConfig", "VaalState", "VARIANTS", "vae_loss", "disc_init", "disc_logits",
           "disc_loss", "vae_step_loss", "train_vaal", "vaal_scores", "vaal_strategy"]

# variant -> (unlabeled target of D, query sign, default Adam lr, default D steps)
VARIANTS = {"authors": (0.0, -1.0, 5e-4, 1), "deepalplus": (1.0, 1.0, 1e-3, 2)}
DISC_STREAM = 0xD15C


@dataclasses.dataclass(frozen=True)
class VaalConfig:
  """VAAL's settings (hashable: a ``jit`` static argument).

  Attributes:
    variant: ``"authors"`` or ``"deepalplus"`` (targets and query direction, see the module).
    epochs: epochs of the joint stream per query (DeepAL+: 30).
    batch_size: rows per stream per step (128).
    vae_steps: VAE steps per step (2; both on the same batch, as DeepAL+).
    adv_steps: discriminator steps per step (authors 1, DeepAL+ 2).
    learning_rate: Adam's for the VAE and ``D`` (authors 5e-4, DeepAL+ 1e-3).
    beta: β of the KL term (1).
    adv_param: λ_adv (1).
    latent_dim: 32.
    vae: ``"auto"`` (``conv32`` for 32×32 images, else ``small``), ``"small"``, ``"conv32"``.
    unlabeled_per_epoch: cap on the unlabeled rows per epoch (``None``: all of U).
  """
  variant: str = "authors"
  epochs: int = 30
  batch_size: int = 128
  vae_steps: int = 2
  adv_steps: int = 1
  learning_rate: float = 5e-4
  beta: float = 1.0
  adv_param: float = 1.0
  latent_dim: int = 32
  vae: str = "auto"
  unlabeled_per_epoch: int | None = None

  def __post_init__(self):
    if self.variant not in VARIANTS:
      raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
    if min(self.epochs, self.batch_size, self.vae_steps, self.adv_steps, self.latent_dim) < 1:
      raise ValueError(f"epochs, batch_size, vae_steps, adv_steps, latent_dim must be >= 1: "
                       f"{self}")
    if not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
    if self.unlabeled_per_epoch is not None and self.unlabeled_per_epoch < 1:
      raise ValueError(f"unlabeled_per_epoch must be >= 1 (or None), got "
                       f"{self.unlabeled_per_epoch}")


class VaalState(NamedTuple):
  vae: Variables
  vae_opt: Any
  disc: Any
  disc_opt: Any


def vae_loss(recon, x, mu, logvar, weights, beta: float = 1.0) -> jax.Array:
  """``MSE_mean(x̂, x) + β·KL_sum`` over the rows of weight 1 (``weights [m]``)."""
  mse = jnp.mean((recon - x) ** 2, axis=tuple(range(1, x.ndim)))
  kl = -0.5 * jnp.sum(1 + logvar - mu ** 2 - jnp.exp(logvar), axis=-1)
  return weighted_mean(mse, weights) + beta * jnp.sum(kl * weights)


def disc_init(key: jax.Array, latent_dim: int) -> list:
  """``D``: ``latent → 512 → 512 → 1`` (Kaiming-normal, as the references)."""
  return mlp_init(key, (latent_dim, 512, 512, 1), init="kaiming")


def disc_logits(params: list, mu: jax.Array) -> jax.Array:
  """Logits ``[n]`` of ``D`` (``D = sigmoid(logits)``)."""
  return mlp_apply(params, mu)[:, 0]


def _bce(logits, target, weights):
  return weighted_mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)),
                       weights)


def disc_loss(params: list, mu_l, mu_u, weights, unlabeled_target: float) -> jax.Array:
  """``BCE(D(μ_L), 1) + BCE(D(μ_U), unlabeled_target)`` (authors 0, DeepAL+ 1)."""
  return (_bce(disc_logits(params, mu_l), 1.0, weights)
          + _bce(disc_logits(params, mu_u), unlabeled_target, weights))


def vae_step_loss(vae: VaeNet, hp: VaalConfig, params, extra, disc, xl, xu, weights, key):
  """The VAE's loss of one step (both streams; ``D`` frozen); ``(loss, new_extra)``."""
  k_l, k_u = jax.random.split(key)
  recon_l, mu_l, lv_l, extra = vae.apply(Variables(params, extra), xl, k_l, train=True)
  recon_u, mu_u, lv_u, extra = vae.apply(Variables(params, extra), xu, k_u, train=True)
  rec = (vae_loss(recon_l, xl, mu_l, lv_l, weights, hp.beta)
         + vae_loss(recon_u, xu, mu_u, lv_u, weights, hp.beta))
  adv = _bce(disc_logits(disc, mu_l), 1.0, weights) + _bce(disc_logits(disc, mu_u), 1.0, weights)
  return rec + hp.adv_param * adv, extra


def _init(vae: VaeNet, hp: VaalConfig, key):
  tx = optax.adam(hp.learning_rate)
  v = vae.init(key)
  disc = disc_init(jax.random.fold_in(key, DISC_STREAM), hp.latent_dim)
  return VaalState(v, tx.init(v.params), disc, tx.init(disc))


def _step(vae: VaeNet, hp: VaalConfig, state: VaalState, plan, s, x):
  tx = optax.adam(hp.learning_rate)
  i_l, i_u, w = joint_batch(plan, s, hp.batch_size)
  xl, xu, w = (parallel.constrain_rows(a) for a in (x[i_l], x[i_u], w))
  keys = jax.random.split(jax.random.fold_in(plan.key, s), hp.vae_steps)
  params, extra, opt = state.vae.params, state.vae.extra, state.vae_opt
  for k in keys:
    grads, extra = jax.grad(vae_step_loss, argnums=2, has_aux=True)(
        vae, hp, params, extra, state.disc, xl, xu, w, k)
    updates, opt = tx.update(grads, opt, params)
    params = optax.apply_updates(params, updates)
  disc, disc_opt = state.disc, state.disc_opt
  unl_target = VARIANTS[hp.variant][0]
  for _ in range(hp.adv_steps):
    mu_l, extra = vae.encode(Variables(params, extra), xl, train=True)
    mu_u, extra = vae.encode(Variables(params, extra), xu, train=True)
    mu_l, mu_u = jax.lax.stop_gradient(mu_l), jax.lax.stop_gradient(mu_u)
    g = jax.grad(disc_loss)(disc, mu_l, mu_u, w, unl_target)
    updates, disc_opt = tx.update(g, disc_opt, disc)
    disc = optax.apply_updates(disc, updates)
  new = VaalState(Variables(params, extra), opt, disc, disc_opt)
  return jax.tree.map(lambda a, b: jnp.where(s < plan.steps, a, b), new, state)


def _fused(vae, hp, state, key, x, mask):
  plan = joint_begin(key, mask, hp.batch_size, hp.unlabeled_per_epoch)
  return jax.lax.fori_loop(0, plan.steps, lambda s, st: _step(vae, hp, st, plan, s, x), state)


def _scores(vae: VaeNet, hp: VaalConfig, state: VaalState, x, chunk_size: int):
  sign = VARIANTS[hp.variant][1]

  def fn(chunk):
    mu, _ = vae.encode(state.vae, chunk[0], train=False)
    return sign * jax.nn.sigmoid(disc_logits(state.disc, mu))
  return chunked_map(fn, (x,), chunk_size)


_init_jit = jax.jit(_init, static_argnums=(0, 1))
_begin_jit = jax.jit(joint_begin, static_argnums=(2, 3))
_step_jit = jax.jit(_step, static_argnums=(0, 1), donate_argnums=(2,))
_fused_jit = jax.jit(_fused, static_argnums=(0, 1), donate_argnums=(2,))
_scores_jit = jax.jit(_scores, static_argnums=(0, 1, 4))


def train_vaal(key: jax.Array, x: jax.Array, mask: jax.Array, hp: VaalConfig = VaalConfig(),
               *, fused: bool | None = None, mesh=None) -> tuple[VaeNet, VaalState]:
  """Trains a fresh VAE and discriminator on the pool ``x [n, H, W, C]`` with the labeled set
  ``mask [n]``; returns the static VAE and the trained state.

  ``fused`` runs each epoch as one device program (default: on accelerators only).
  """
  vae = make_vae(hp.vae, tuple(x.shape[1:]), hp.latent_dim)
  if fused is None:
    fused = jax.default_backend() != "cpu"
  k_init, k_train = jax.random.split(key)
  with parallel.use_mesh(mesh):
    state = replicate(_init_jit(vae, hp, k_init), mesh)
    mask = replicate(jnp.asarray(mask), mesh)
    cap = hp.unlabeled_per_epoch
    return vae, run_epochs(
        state, k_train, hp.epochs,
        begin=lambda st, k: (st, _begin_jit(k, mask, hp.batch_size, cap)),
        step=lambda st, plan, s: _step_jit(vae, hp, st, plan, s, x),
        end=lambda st: st,
        fused=(lambda st, k: _fused_jit(vae, hp, st, k, x, mask)) if fused else None)


def vaal_scores(vae: VaeNet, hp: VaalConfig, state: VaalState, x: jax.Array,
                chunk_size: int = 1024, *, mesh=None) -> jax.Array:
  """jal's VAAL score ``[n]`` (larger = pick): ``−D(μ(x))`` (authors) or ``+D(μ(x))``
  (DeepAL+), eval mode, fixed-size chunks."""
  with parallel.use_mesh(mesh):
    return _scores_jit(vae, hp, replicate(state, mesh), x, int(chunk_size))


def vaal_strategy(variant: str = "authors", vae_epochs: int = 30, vae_batch_size: int = 128,
                  vae_steps: int = 2, adv_steps: int | None = None,
                  vae_lr: float | None = None, beta: float = 1.0, adv_param: float = 1.0,
                  latent_dim: int = 32, vae: str = "auto",
                  unlabeled_per_epoch: int | None = None) -> Strategy:
  """VAAL (BASELINES.md §3): VAE + discriminator trained from scratch in every ``score``.

  Args:
    variant: ``"authors"`` (D's targets 1/0, the lowest D picked) or ``"deepalplus"`` (1/1,
      the highest D: DeepAL+'s bugs, §3.5).
    vae_epochs, vae_batch_size, vae_steps, beta, adv_param, latent_dim, vae,
      unlabeled_per_epoch: see ``VaalConfig``.
    adv_steps, vae_lr: ``None`` takes the variant's (authors: 1, 5e-4; DeepAL+: 2, 1e-3).
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
  _, _, lr, steps = VARIANTS[variant]
  hp = VaalConfig(variant=variant, epochs=int(vae_epochs), batch_size=int(vae_batch_size),
                  vae_steps=int(vae_steps), adv_steps=int(steps if adv_steps is None
                                                          else adv_steps),
                  learning_rate=float(lr if vae_lr is None else vae_lr), beta=float(beta),
                  adv_param=float(adv_param), latent_dim=int(latent_dim), vae=vae,
                  unlabeled_per_epoch=None if unlabeled_per_epoch is None
                  else int(unlabeled_per_epoch))
  if vae != "auto":
    vae_kind(vae, (32, 32, 1))  # validates the name

  def score(key, ctx: Context):
    fused = use_fused(ctx.train_config) if ctx.train_config is not None else None
    net, state = train_vaal(key, ctx.x, ctx.labeled, hp, fused=fused, mesh=ctx.mesh)
    return vaal_scores(net, hp, state, ctx.x, ctx.chunk_size, mesh=ctx.mesh)

  def pick(key, ctx: Context, scores, budget):
    return cluster.top_k_unlabeled(scores, ctx.labeled, budget, mesh=ctx.mesh)

  return Strategy("vaal", score, no_info(pick))
