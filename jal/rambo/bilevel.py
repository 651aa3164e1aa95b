"""Bilevel training of the utility model (§4.2.1; Franceschi et al. 2018; SPEC §2.4 REC).

Outer: ``min_λ E(w*(λ)) = Σ_{D_val} L_Total``; inner: ``w*(λ) = argmin_w Σ_{D_tr} L_Total +
Ω_λ(w)``, ``Ω_λ(w) = ½ Σ_l exp(λ_l)‖W_l‖²`` over weight tensors (biases excluded). The inner
problem runs ``T`` warm-started Adam steps; the hypergradient comes from the implicit function
theorem, ``v = (∇²_w L + δI)⁻¹ ∇_w E`` by conjugate gradients on Hessian-vector products and
``∇_λ = −∂²_{λw} L · v`` (``hypergrad="cg"``, or the same through ``jax.lax.custom_root``),
or from iterative differentiation through the ``T`` unrolled steps (``"itd"``); see
``jal.rambo.hypergrad``.
"""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jal.rambo.fast_fit import patch_set_net
from jal.rambo.hypergrad import (
  HYPERGRADS,
  custom_root_hypergrad,
  implicit_hypergrad,
  itd_hypergrad,
)
from jal.rambo.losses import total_loss
from jal.rambo.utility_model import SetNet

__all__ = ["BilevelConfig", "PairData", "weight_leaves", "init_lambda", "regularizer",
           "implicit_hypergrad", "split_by_length", "pair_loss", "train_plain",
           "train_bilevel"]


@dataclasses.dataclass(frozen=True)
class BilevelConfig:
  """Schedule of the utility model's training (hashable: a ``jit`` static argument).

  Attributes:
    bilevel: implicit-gradient bilevel training (False = "Bilevel ×": plain training on all
      of D with fixed λ for ``outer_steps * inner_steps`` steps).
    outer_steps: Adam steps on λ.
    inner_steps: T, warm-started Adam steps on w per outer step.
    inner_lr: inner Adam learning rate.
    outer_lr: outer Adam learning rate.
    hypergrad: ``"cg"`` (AID-CG, ``implicit_hypergrad``), ``"custom_root"`` (the same implicit
      gradient through ``jax.lax.custom_root``) or ``"itd"`` (backpropagation through the T
      unrolled inner Adam steps; the inner steps then run as one ``lax.scan``).
    cg_steps: conjugate-gradient iterations K (``"cg"``, ``"custom_root"``).
    damping: δ added to the Hessian.
    lam_init: initial log-regularisation λ.
    per_parameter: one λ per parameter instead of one per weight tensor.
    refit: after the outer loop, run ``inner_steps`` more on D_tr ∪ D_val at λ*.
    lam_ot: λ_OT (0 = "OT ×").
    ranknet: RankNet loss (False = MSE regression, "RankNet ×").
  """
  bilevel: bool = True
  outer_steps: int = 20
  inner_steps: int = 100
  inner_lr: float = 1e-3
  outer_lr: float = 1e-2
  hypergrad: str = "cg"
  cg_steps: int = 10
  damping: float = 1e-3
  lam_init: float = math.log(1e-4)
  per_parameter: bool = False
  refit: bool = False
  lam_ot: float = 1.0
  ranknet: bool = True

  def __post_init__(self):
    if self.hypergrad not in HYPERGRADS:
      raise ValueError(f"hypergrad must be one of {HYPERGRADS}, got {self.hypergrad!r}")
    for name in ("outer_steps", "inner_steps", "cg_steps"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"utility.{name} must be >= 1, got {getattr(self, name)}")
    for name in ("inner_lr", "outer_lr"):
      if not float(getattr(self, name)) > 0:
        raise ValueError(f"utility.{name} must be > 0, got {getattr(self, name)}")
    if float(self.damping) < 0 or float(self.lam_ot) < 0:
      raise ValueError(f"utility.damping and utility.lam_ot must be >= 0, got {self.damping}, "
                       f"{self.lam_ot}")


class PairData(NamedTuple):
  """Utility pairs as masks over a shared pool ``[n, ...]`` (padded to a fixed capacity P)."""
  masks1: jax.Array  # [P, n] bool
  masks2: jax.Array  # [P, n] bool
  u1: jax.Array      # [P] utilities
  u2: jax.Array      # [P]
  ot1: jax.Array     # [P] normalised OT targets
  ot2: jax.Array     # [P]
  weight: jax.Array  # [P] 1 for real pairs, 0 for padding


def weight_leaves(params) -> Any:
  """Pytree of Python bools: True on weight tensors (ndim ≥ 2), False on biases."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def init_lambda(params, config: BilevelConfig):
  """λ pytree: a scalar per leaf (or per parameter), all ``config.lam_init``."""
  if config.per_parameter:
    return jax.tree.map(lambda p: jnp.full(p.shape, config.lam_init, p.dtype), params)
  return jax.tree.map(lambda p: jnp.asarray(config.lam_init, p.dtype), params)


def regularizer(params, lam) -> jax.Array:
  """Ω_λ(w) = ½ Σ_l exp(λ_l)‖W_l‖² over weight tensors (biases excluded)."""
  terms = jax.tree.map(lambda w, l, on: 0.5 * jnp.sum(jnp.exp(l) * w * w) if on else 0.0,
                       params, lam, weight_leaves(params))
  return sum(jax.tree.leaves(terms))


def split_by_length(data: PairData) -> tuple[jax.Array, jax.Array]:
  """Pair weights of D_tr (shorter half by set length) and D_val (the rest), each ``[P]``."""
  size = jnp.sum(data.masks1, -1) + jnp.sum(data.masks2, -1)
  valid = data.weight > 0
  order = jnp.argsort(jnp.where(valid, size, jnp.iinfo(jnp.int32).max), stable=True)
  rank = jnp.argsort(order)
  n_tr = jnp.sum(valid) // 2
  tr = valid & (rank < n_tr)
  return (data.weight * tr).astype(jnp.float32), (data.weight * (valid & ~tr)).astype(jnp.float32)


def pair_loss(set_net: SetNet, config: BilevelConfig, params, pool: jax.Array, data: PairData,
              weight: jax.Array) -> jax.Array:
  """L_Total of the weighted pairs (ψ runs once over the pool ``[n, ...]``)."""
  p = data.masks1.shape[0]
  out = set_net.apply_masks(params, pool, jnp.concatenate([data.masks1, data.masks2]))
  return total_loss(out.score[:p], out.score[p:], out.ot[:p], out.ot[p:], data.u1, data.u2,
                    data.ot1, data.ot2, weight, lam_ot=config.lam_ot, ranknet=config.ranknet)


class _State(NamedTuple):
  params: Any
  opt_w: Any
  lam: Any
  opt_lam: Any


@jax.jit(static_argnums=(0, 1))
def _adam_step(set_net, config, params, opt, lam, pool, data, weight):
  """One full-batch Adam step on ``L(w) + Ω_λ(w)`` of the ``weight``ed pairs."""
  loss = lambda p: pair_loss(set_net, config, p, pool, data, weight) + regularizer(p, lam)
  upd, opt = optax.adam(config.inner_lr).update(jax.grad(loss)(params), opt, params)
  return optax.apply_updates(params, upd), opt


def _adam_steps(set_net, config, params, opt, lam, pool, data, weight, steps):
  # A Python loop over one compiled step: XLA:CPU runs the same step 4-5x slower inside a
  # lax.scan body (BUILD_NOTES.md, RAMBO speed); on accelerators dispatch is cheap too.
  for _ in range(steps):
    params, opt = _adam_step(set_net, config, params, opt, lam, pool, data, weight)
  return params, opt


def train_plain(set_net: SetNet, config: BilevelConfig, params, pool: jax.Array,
                data: PairData, steps: int, lam=None):
  """``steps`` full-batch Adam steps on all pairs at fixed λ (default ``lam_init``)."""
  lam = init_lambda(params, config) if lam is None else lam
  set_net, pool = patch_set_net(set_net, params, pool)
  opt = optax.adam(config.inner_lr).init(params)
  return _adam_steps(set_net, config, params, opt, lam, pool, data, data.weight, int(steps))[0]


# ITD differentiates through Adam: eps_root > 0 keeps d sqrt(ν)/dν finite where ν = 0.
_ITD_EPS_ROOT = 1e-16


def _losses(set_net, config, pool, data, w_tr, w_val):
  inner = lambda p, l: pair_loss(set_net, config, p, pool, data, w_tr) + regularizer(p, l)
  outer = lambda p: pair_loss(set_net, config, p, pool, data, w_val)
  return inner, outer


def _lam_step(config, state: _State, hg):
  upd, opt_lam = optax.adam(config.outer_lr).update(hg, state.opt_lam, state.lam)
  return state._replace(lam=optax.apply_updates(state.lam, upd), opt_lam=opt_lam)


@jax.jit(static_argnums=(0, 1))
def _hyper_step(set_net, config, state: _State, pool, data, w_tr, w_val):
  """Implicit hypergradient at the inner solution and one Adam step on λ."""
  inner, outer = _losses(set_net, config, pool, data, w_tr, w_val)
  hypergrad = custom_root_hypergrad if config.hypergrad == "custom_root" else implicit_hypergrad
  hg = hypergrad(inner, outer, state.params, state.lam, cg_steps=config.cg_steps,
                 damping=config.damping)
  return _lam_step(config, state, hg), outer(state.params)


@jax.jit(static_argnums=(0, 1))
def _itd_step(set_net, config, state: _State, pool, data, w_tr, w_val):
  """T unrolled inner Adam steps (one ``lax.scan``), their ITD hypergradient, one λ step."""
  inner, outer = _losses(set_net, config, pool, data, w_tr, w_val)
  tx = optax.adam(config.inner_lr, eps_root=_ITD_EPS_ROOT)
  hg, params, opt_w, e = itd_hypergrad(inner, outer, state.params, state.lam, tx,
                                       config.inner_steps, state.opt_w)
  return _lam_step(config, state._replace(params=params, opt_w=opt_w), hg), e


def _outer_step(set_net, config, state: _State, pool, data, w_tr, w_val):
  """T warm-started inner Adam steps on D_tr, then the λ update from D_val."""
  if config.hypergrad == "itd":
    return _itd_step(set_net, config, state, pool, data, w_tr, w_val)
  params, opt_w = _adam_steps(set_net, config, state.params, state.opt_w, state.lam, pool, data,
                              w_tr, config.inner_steps)
  return _hyper_step(set_net, config, state._replace(params=params, opt_w=opt_w), pool, data,
                     w_tr, w_val)


def train_bilevel(set_net: SetNet, config: BilevelConfig, params, pool: jax.Array,
                  data: PairData, lam=None):
  """Trains the utility model on the pairs ``data`` (warm start from ``params``).

  Args:
    set_net: the static utility network.
    config: schedule and ablation switches.
    params: initial parameters (warm start).
    pool: ``[n, ...]`` elements the pair masks index.
    data: the pairs D.
    lam: initial λ (default ``config.lam_init`` everywhere).

  Returns:
    ``(params, lam, outer_losses [outer_steps])``.
  """
  lam = init_lambda(params, config) if lam is None else lam
  if not config.bilevel:
    steps = config.outer_steps * config.inner_steps
    return train_plain(set_net, config, params, pool, data, steps, lam), lam, jnp.zeros(0)
  w_tr, w_val = split_by_length(data)
  set_net, pool = patch_set_net(set_net, params, pool)
  state = _State(params, optax.adam(config.inner_lr).init(params), lam,
                 optax.adam(config.outer_lr).init(lam))
  losses = []
  for _ in range(config.outer_steps):
    state, e = _outer_step(set_net, config, state, pool, data, w_tr, w_val)
    losses.append(e)
  params = state.params
  if config.refit:
    params = train_plain(set_net, config, params, pool, data, config.inner_steps, state.lam)
  return params, state.lam, jnp.stack(losses)
