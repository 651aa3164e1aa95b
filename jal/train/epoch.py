"""The epoch kernel shared by every trainer: ``init_state``, ``begin``, ``step``, ``end``.

``begin`` shuffles the labeled rows of the pool to the front (``EpochPlan``), ``step`` runs
minibatch ``s`` of the epoch (a no-op past the epoch's last step or once the stopping rule
fired), ``end`` closes the epoch (running accuracy, stopping rule). ``jal.train.fit`` drives
them one compiled step at a time (CPU) or as one fused program per epoch; ``fit_subsets``
drives them with host-known step counts. The ``*_one`` / ``*_many`` names are the jitted
single-model and ``vmap``ped forms.
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jal import parallel
from jal.models.net import Net, Variables
from jal.scores import superloss_weights
from jal.train.config import TrainConfig, make_optimizer

__all__ = ["TrainState", "EpochPlan", "augment", "init_state", "begin", "step", "end",
           "fused_epoch", "fused_epoch_many", "init_one", "init_many", "begin_one",
           "begin_many", "step_one", "step_many", "end_one", "end_many", "fused_one",
           "fused_many"]


class TrainState(NamedTuple):
  """Training state of one model (a pytree; ``fit_many`` adds a leading model axis)."""
  variables: Variables
  opt_state: Any
  epoch: jax.Array      # [] int32, epochs run
  done: jax.Array       # [] bool, stopping rule met
  train_acc: jax.Array  # [] float32, running accuracy of the last epoch
  correct: jax.Array    # [] float32, correct predictions so far in this epoch
  seen: jax.Array       # [] float32, examples seen so far in this epoch


class EpochPlan(NamedTuple):
  """Per-epoch data order of one model."""
  order: jax.Array   # [n] int32, labeled rows first, shuffled
  n_lab: jax.Array   # [] int32, labeled rows
  steps: jax.Array   # [] int32, ceil(n_lab / B)
  key: jax.Array     # PRNG key of the epoch's steps


def augment(key: jax.Array, xb: jax.Array) -> jax.Array:
  """Random 4-pixel crop (reflect padding) and horizontal flip of a ``[B, H, W, C]`` batch."""
  b, h, w, _ = xb.shape
  k1, k2, k3 = jax.random.split(key, 3)
  padded = jnp.pad(xb, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
  dy = jax.random.randint(k1, (b,), 0, 9)
  dx = jax.random.randint(k2, (b,), 0, 9)
  crop = jax.vmap(lambda im, y, x: jax.lax.dynamic_slice(im, (y, x, 0), (h, w, im.shape[-1])))
  out = crop(padded, dy, dx)
  flip = jax.random.bernoulli(k3, 0.5, (b,))
  return jnp.where(flip[:, None, None, None], out[:, :, ::-1], out)


def init_state(net: Net, config: TrainConfig, key: jax.Array) -> TrainState:
  variables = net.init(key)
  opt_state = make_optimizer(config).init(variables.params)
  zero = jnp.float32(0.0)
  return TrainState(variables, opt_state, jnp.int32(0), jnp.bool_(False), zero, zero, zero)


def begin(state: TrainState, key: jax.Array, mask: jax.Array, batch_size: int):
  """Shuffles the labeled rows to the front and resets the epoch counters."""
  n = mask.shape[0]
  n_lab = jnp.maximum(jnp.sum(mask, dtype=jnp.int32), 1)
  k_perm, k_steps = jax.random.split(key)
  order = jnp.argsort(jnp.where(mask, jax.random.uniform(k_perm, (n,)), 2.0)).astype(jnp.int32)
  plan = EpochPlan(order, n_lab, (n_lab + batch_size - 1) // batch_size, k_steps)
  zero = jnp.float32(0.0)
  return state._replace(correct=zero, seen=zero), plan


def step(net: Net, config: TrainConfig, state: TrainState, plan: EpochPlan, s: jax.Array,
          x: jax.Array, y: jax.Array) -> TrainState:
  """Minibatch ``s`` of the epoch; a no-op when ``s >= plan.steps`` or the model is done."""
  tx = make_optimizer(config)
  bsz = config.batch_size
  tau = config.superloss_tau if config.superloss_tau is not None else math.log(net.num_classes)

  def loss_fn(params, extra, xb, yb, wb, k):
    logits, _, new_extra = net.apply(Variables(params, extra), xb, train=True, key=k)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
    if config.superloss:
      sig = superloss_weights(ce, tau, config.superloss_lam)
      per = (ce - tau) * sig + config.superloss_lam * jnp.log(sig) ** 2
    else:
      per = ce
    loss = jnp.sum(per * wb) / jnp.maximum(jnp.sum(wb), 1.0)
    correct = jnp.sum((jnp.argmax(logits, -1) == yb) * wb)
    return loss, (new_extra, correct)

  pos = s * bsz + jnp.arange(bsz, dtype=jnp.int32)
  wb = (pos < plan.n_lab).astype(jnp.float32)
  # The last batch is topped up with repeated labeled rows (zero weight), so BatchNorm only
  # ever sees real labeled examples and the shape stays fixed.
  idx = plan.order[pos % plan.n_lab]
  k_aug, k_drop = jax.random.split(jax.random.fold_in(plan.key, s))
  # Under a mesh (``fit(..., mesh=...)``) the minibatch is split along ``data``; parameters
  # are replicated and ``jit`` all-reduces the gradients.
  xb, yb, wb = (parallel.constrain_rows(a) for a in (x[idx], y[idx], wb))
  if config.augment == "crop_flip":
    xb = augment(k_aug, xb)
  grads, (extra, c) = jax.grad(loss_fn, has_aux=True)(
      state.variables.params, state.variables.extra, xb, yb, wb, k_drop)
  updates, opt_state = tx.update(grads, state.opt_state, state.variables.params)
  params = optax.apply_updates(state.variables.params, updates)
  new = state._replace(variables=Variables(params, extra), opt_state=opt_state,
                       correct=state.correct + c, seen=state.seen + jnp.sum(wb))
  active = (s < plan.steps) & ~state.done
  return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)


def end(config: TrainConfig, state: TrainState) -> TrainState:
  """Closes the epoch: running accuracy and the stopping rule."""
  acc = state.correct / jnp.maximum(state.seen, 1.0)
  epoch = state.epoch + 1
  done = epoch >= config.epochs
  if config.stop_train_acc is not None:
    done = done | (acc > config.stop_train_acc)
  new = state._replace(epoch=epoch, done=done, train_acc=acc)
  return jax.tree.map(lambda a, b: jnp.where(state.done, a, b), state, new)


def fused_epoch(net, config, state, key, x, y, mask):
  """A whole epoch as one device program (fast on accelerators)."""
  state, plan = begin(state, key, mask, config.batch_size)
  state = jax.lax.fori_loop(0, plan.steps, lambda s, st: step(net, config, st, plan, s, x, y),
                            state)
  return end(config, state)


def fused_epoch_many(net, config, state, keys, x, y, masks):
  state, plan = jax.vmap(begin, in_axes=(0, 0, 0, None))(state, keys, masks, config.batch_size)
  vstep = jax.vmap(step, in_axes=(None, None, 0, 0, None, None, None))
  state = jax.lax.fori_loop(0, jnp.max(plan.steps),
                            lambda s, st: vstep(net, config, st, plan, s, x, y), state)
  return jax.vmap(end, in_axes=(None, 0))(config, state)


init_one = jax.jit(init_state, static_argnums=(0, 1))
init_many = jax.jit(jax.vmap(init_state, in_axes=(None, None, 0)), static_argnums=(0, 1))
begin_one = jax.jit(begin, static_argnums=(3,), donate_argnums=(0,))
begin_many = jax.jit(jax.vmap(begin, in_axes=(0, 0, 0, None)), static_argnums=(3,),
                      donate_argnums=(0,))
step_one = jax.jit(step, static_argnums=(0, 1), donate_argnums=(2,))
step_many = jax.jit(jax.vmap(step, in_axes=(None, None, 0, 0, None, None, None)),
                     static_argnums=(0, 1), donate_argnums=(2,))
end_one = jax.jit(end, static_argnums=(0,), donate_argnums=(1,))
end_many = jax.jit(jax.vmap(end, in_axes=(None, 0)), static_argnums=(0,), donate_argnums=(1,))
fused_one = jax.jit(fused_epoch, static_argnums=(0, 1), donate_argnums=(2,))
fused_many = jax.jit(fused_epoch_many, static_argnums=(0, 1), donate_argnums=(2,))
