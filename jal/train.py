"""Training from scratch on the labeled part of a fixed-size pool: ``fit``, ``fit_many``.

Shapes never depend on how many points are labeled: the labeled set is a boolean mask over the
pool, each epoch shuffles the labeled indices to the front and runs ``ceil(n_labeled / B)``
steps of a fixed minibatch size ``B`` (the last batch is topped up with repeated labeled
examples that carry zero loss weight). One compile therefore serves every AL round, and
``fit_many`` ``vmap``s the very same epoch over a leading axis of keys and masks.
"""

import dataclasses
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jal import sharding
from jal.chunking import chunked_map
from jal.models.net import Net, Variables
from jal.scores import superloss_weights

__all__ = ["TrainConfig", "TrainState", "FitResult", "fit", "fit_many", "predict",
           "accuracy", "make_optimizer"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How the target model is trained (hashable: a ``jit`` static argument).

  Attributes:
    epochs: number of epochs, or the maximum when ``stop_train_acc`` is set.
    batch_size: fixed minibatch size ``B``.
    learning_rate: optimizer step size.
    optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
    weight_decay: decoupled weight decay (AdamW / SGD with L2); 0 disables.
    stop_train_acc: stop once the epoch's running train accuracy exceeds this (RAMBO §5.1
      uses 0.99 with ``epochs=100``); ``None`` trains for exactly ``epochs``.
    superloss: weight per-example CE by SuperLoss's closed-form σ* (BRAL-T §4.1).
    superloss_tau: SuperLoss threshold τ; ``None`` means ``log K``.
    superloss_lam: SuperLoss regulariser λ.
    augment: ``"none"`` or ``"crop_flip"`` (4-pixel reflect-pad random crop + horizontal flip).
    fused_epoch: run each epoch as one device program (``lax.fori_loop`` over steps) instead
      of a Python loop over one compiled step. ``None`` = fused on GPU/TPU, Python loop on CPU,
      where XLA runs a step inside a loop 2-5x slower than the same step dispatched alone
      (BUILD_NOTES.md). Both give the same result.
  """
  epochs: int = 20
  batch_size: int = 64
  learning_rate: float = 1e-3
  optimizer: str = "adam"
  weight_decay: float = 0.0
  stop_train_acc: float | None = None
  superloss: bool = False
  superloss_tau: float | None = None
  superloss_lam: float = 1.0
  augment: str = "none"
  fused_epoch: bool | None = None

  def __post_init__(self):
    if self.epochs < 1 or self.batch_size < 1:
      raise ValueError("epochs and batch_size must be >= 1")
    if self.optimizer not in ("adam", "sgd"):
      raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
    if self.augment not in ("none", "crop_flip"):
      raise ValueError(f"augment must be 'none' or 'crop_flip', got {self.augment!r}")


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


class FitResult(NamedTuple):
  """Output of ``fit``/``fit_many``.

  Attributes:
    variables: trained model state (leading axis ``[k]`` for ``fit_many``).
    epochs: epochs run (``[]`` or ``[k]``).
    train_acc: running train accuracy of the last epoch (``[]`` or ``[k]``).
  """
  variables: Variables
  epochs: jax.Array
  train_acc: jax.Array


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """The optax optimizer described by ``config``."""
  if config.optimizer == "adam":
    if config.weight_decay:
      return optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return optax.adam(config.learning_rate)
  tx = optax.sgd(config.learning_rate, momentum=0.9)
  if config.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
  return tx


def _augment(key: jax.Array, xb: jax.Array) -> jax.Array:
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


def _init_state(net: Net, config: TrainConfig, key: jax.Array) -> TrainState:
  variables = net.init(key)
  opt_state = make_optimizer(config).init(variables.params)
  zero = jnp.float32(0.0)
  return TrainState(variables, opt_state, jnp.int32(0), jnp.bool_(False), zero, zero, zero)


def _begin(state: TrainState, key: jax.Array, mask: jax.Array, batch_size: int):
  """Shuffles the labeled rows to the front and resets the epoch counters."""
  n = mask.shape[0]
  n_lab = jnp.maximum(jnp.sum(mask, dtype=jnp.int32), 1)
  k_perm, k_steps = jax.random.split(key)
  order = jnp.argsort(jnp.where(mask, jax.random.uniform(k_perm, (n,)), 2.0)).astype(jnp.int32)
  plan = EpochPlan(order, n_lab, (n_lab + batch_size - 1) // batch_size, k_steps)
  zero = jnp.float32(0.0)
  return state._replace(correct=zero, seen=zero), plan


def _step(net: Net, config: TrainConfig, state: TrainState, plan: EpochPlan, s: jax.Array,
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
  xb, yb, wb = (sharding.constrain_rows(a) for a in (x[idx], y[idx], wb))
  if config.augment == "crop_flip":
    xb = _augment(k_aug, xb)
  grads, (extra, c) = jax.grad(loss_fn, has_aux=True)(
      state.variables.params, state.variables.extra, xb, yb, wb, k_drop)
  updates, opt_state = tx.update(grads, state.opt_state, state.variables.params)
  params = optax.apply_updates(state.variables.params, updates)
  new = state._replace(variables=Variables(params, extra), opt_state=opt_state,
                       correct=state.correct + c, seen=state.seen + jnp.sum(wb))
  active = (s < plan.steps) & ~state.done
  return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)


def _end(config: TrainConfig, state: TrainState) -> TrainState:
  """Closes the epoch: running accuracy and the stopping rule."""
  acc = state.correct / jnp.maximum(state.seen, 1.0)
  epoch = state.epoch + 1
  done = epoch >= config.epochs
  if config.stop_train_acc is not None:
    done = done | (acc > config.stop_train_acc)
  new = state._replace(epoch=epoch, done=done, train_acc=acc)
  return jax.tree.map(lambda a, b: jnp.where(state.done, a, b), state, new)


def _fused_epoch(net, config, state, key, x, y, mask):
  """A whole epoch as one device program (fast on accelerators)."""
  state, plan = _begin(state, key, mask, config.batch_size)
  state = jax.lax.fori_loop(0, plan.steps, lambda s, st: _step(net, config, st, plan, s, x, y),
                            state)
  return _end(config, state)


def _fused_epoch_many(net, config, state, keys, x, y, masks):
  state, plan = jax.vmap(_begin, in_axes=(0, 0, 0, None))(state, keys, masks, config.batch_size)
  step = jax.vmap(_step, in_axes=(None, None, 0, 0, None, None, None))
  state = jax.lax.fori_loop(0, jnp.max(plan.steps),
                            lambda s, st: step(net, config, st, plan, s, x, y), state)
  return jax.vmap(_end, in_axes=(None, 0))(config, state)


_init_one = jax.jit(_init_state, static_argnums=(0, 1))
_init_many = jax.jit(jax.vmap(_init_state, in_axes=(None, None, 0)), static_argnums=(0, 1))
_begin_one = jax.jit(_begin, static_argnums=(3,), donate_argnums=(0,))
_begin_many = jax.jit(jax.vmap(_begin, in_axes=(0, 0, 0, None)), static_argnums=(3,),
                      donate_argnums=(0,))
_step_one = jax.jit(_step, static_argnums=(0, 1), donate_argnums=(2,))
_step_many = jax.jit(jax.vmap(_step, in_axes=(None, None, 0, 0, None, None, None)),
                     static_argnums=(0, 1), donate_argnums=(2,))
_end_one = jax.jit(_end, static_argnums=(0,), donate_argnums=(1,))
_end_many = jax.jit(jax.vmap(_end, in_axes=(None, 0)), static_argnums=(0,), donate_argnums=(1,))
_fused_one = jax.jit(_fused_epoch, static_argnums=(0, 1), donate_argnums=(2,))
_fused_many = jax.jit(_fused_epoch_many, static_argnums=(0, 1), donate_argnums=(2,))


def _use_fused(config: TrainConfig) -> bool:
  if config.fused_epoch is not None:
    return config.fused_epoch
  return jax.default_backend() != "cpu"


def _check_pool(x, y, mask, num_classes):
  if x.ndim != 4:
    raise ValueError(f"x must be [n, H, W, C], got shape {x.shape}")
  if y.shape != (x.shape[0],):
    raise ValueError(f"y must be [n] = [{x.shape[0]}], got shape {y.shape}")
  if mask.shape[-1] != x.shape[0] or mask.dtype != np.bool_:
    raise ValueError(f"mask must be bool [..., {x.shape[0]}], got {mask.dtype} {mask.shape}")
  if not np.all(np.asarray(mask).sum(-1) > 0):
    raise ValueError("cannot train on an empty labeled set")
  any_mask = np.asarray(mask).any(axis=tuple(range(mask.ndim - 1)))
  if isinstance(y, jax.Array) and not y.is_fully_addressable:  # spans processes
    lo, hi = (int(v) for v in _labeled_range(y, jnp.asarray(any_mask)))
  else:
    yl = np.asarray(y)[any_mask]
    lo, hi = (int(yl.min()), int(yl.max())) if yl.size else (0, 0)
  if lo < 0 or hi >= num_classes:
    raise ValueError(f"labels of the training points must lie in [0, {num_classes}), "
                     f"got range [{lo}, {hi}]")


@jax.jit
def _labeled_range(y, mask):
  """``(min, max)`` of ``y`` ``[n]`` over rows with ``mask`` True (replicated scalars)."""
  big = jnp.iinfo(y.dtype).max
  return jnp.min(jnp.where(mask, y, big)), jnp.max(jnp.where(mask, y, -1))


def _run(many: bool, net, config, state, keys, x, y, mask, verbose, what):
  """Epoch loop: fused on-device epochs, or a Python loop over one compiled step (CPU)."""
  fused = _use_fused(config)
  fold = jax.vmap(jax.random.fold_in, in_axes=(0, None)) if many else jax.random.fold_in
  t0 = time.perf_counter()
  for e in range(config.epochs):
    ek = fold(keys, e)
    if fused:
      state = (_fused_many if many else _fused_one)(net, config, state, ek, x, y, mask)
    else:
      state, plan = (_begin_many if many else _begin_one)(state, ek, mask, config.batch_size)
      step = _step_many if many else _step_one
      for s in range(int(jnp.max(plan.steps))):
        state = step(net, config, state, plan, jnp.int32(s), x, y)
      state = (_end_many if many else _end_one)(config, state)
    if config.stop_train_acc is not None and bool(jnp.all(state.done)):
      break
    if verbose and (e + 1) % max(1, config.epochs // 5) == 0:
      acc = float(jnp.mean(state.train_acc))
      print(f"  {what}: epoch {e + 1}/{config.epochs} train acc {acc:.3f} "
            f"({time.perf_counter() - t0:.1f}s)", flush=True)
  return FitResult(state.variables, state.epoch, state.train_acc)


def _place(mesh, state, x, y, mask):
  """Parameters and optimizer state replicated; the pool split along ``data`` when its size
  allows (else replicated); the small labeled masks replicated."""
  if mesh is None:
    return state, x, y, mask
  d = mesh.shape[sharding.DATA]
  pool = (lambda a: jax.device_put(a, sharding.rows_sharding(mesh, a.ndim))) \
      if x.shape[0] % d == 0 else (lambda a: sharding.replicate(a, mesh))
  return sharding.replicate(state, mesh), pool(x), pool(y), sharding.replicate(mask, mesh)


def fit(key: jax.Array, net: Net, config: TrainConfig, x: jax.Array, y: jax.Array,
        mask: jax.Array, *, verbose: bool = False, mesh=None) -> FitResult:
  """Trains a fresh model on the rows of the pool where ``mask`` is True.

  Args:
    key: PRNG key; it decides the initialisation and the data order.
    net: the static network.
    config: training hyper-parameters.
    x: pool images ``[n, H, W, C]``.
    y: pool labels ``[n]`` (only labeled rows are read).
    mask: ``[n]`` bool, the labeled set.
    verbose: print progress a few times per fit.
    mesh: optional ``jal.sharding`` mesh: parameters replicated, minibatches (``batch_size``
      should be a multiple of the device count) and the pool split along ``data``. ``None``
      runs on the default device exactly as before.

  Returns:
    ``FitResult`` with the trained variables.
  """
  _check_pool(x, y, mask, net.num_classes)
  k_init, k_train = jax.random.split(key)
  with sharding.use_mesh(mesh):
    state = _init_one(net, config, k_init)
    state, x, y, mask = _place(mesh, state, x, y, mask)
    return _run(False, net, config, state, k_train, x, y, mask, verbose, "fit")


def fit_many(keys: jax.Array, net: Net, config: TrainConfig, x: jax.Array, y: jax.Array,
             masks: jax.Array, *, verbose: bool = False, mesh=None) -> FitResult:
  """Trains ``k`` models at once, ``vmap``ped over keys and subset masks.

  Model ``i`` is trained exactly as ``fit(keys[i], net, config, x, y, masks[i])`` would train it
  (same initialisation, same data order, same stopping epoch); all models share one compiled
  (vmapped) step or fused epoch.

  Args:
    keys: ``[k]`` PRNG keys.
    net: the static network.
    config: training hyper-parameters (shared).
    x: pool images ``[n, H, W, C]`` (shared).
    y: pool labels ``[n]`` (shared).
    masks: ``[k, n]`` bool subset masks.
    verbose: print progress.
    mesh: optional ``jal.sharding`` mesh (see ``fit``); the ``k`` models are replicated and
      each one's minibatch is split along ``data``.

  Returns:
    ``FitResult`` whose leaves have a leading ``[k]`` axis.
  """
  if masks.ndim != 2 or masks.shape[0] != keys.shape[0]:
    raise ValueError(f"masks must be [k, n] with k = {keys.shape[0]}, got {masks.shape}")
  _check_pool(x, y, masks, net.num_classes)
  split = jax.vmap(jax.random.split)(keys)
  with sharding.use_mesh(mesh):
    state = _init_many(net, config, split[:, 0])
    state, x, y, masks = _place(mesh, state, x, y, masks)
    return _run(True, net, config, state, split[:, 1], x, y, masks, verbose,
                f"fit_many[{keys.shape[0]}]")


def _predict(net: Net, variables: Variables, x: jax.Array, chunk_size: int):
  def fn(chunk):
    logits, emb, _ = net.apply(variables, chunk[0], train=False)
    return logits, emb
  return chunked_map(fn, (x,), chunk_size)


_predict_jit = jax.jit(_predict, static_argnums=(0, 3))


def predict(net: Net, variables: Variables, x: jax.Array, chunk_size: int = 1024, *,
            mesh=None):
  """Logits ``[n, K]`` and embeddings ``[n, D]`` of a pool, in fixed-size chunks (eval mode).

  With a ``mesh``, the variables are replicated, each device maps its own rows in chunks of
  ``chunk_size`` and both outputs come back split along ``data`` (``n`` a multiple of the
  device count; otherwise the pool is padded inside and the outputs trimmed to ``[n]``).
  """
  if mesh is None:
    return _predict_jit(net, variables, x, int(chunk_size))
  with sharding.use_mesh(mesh):
    return _predict_jit(net, sharding.replicate(variables, mesh), x, int(chunk_size))


def accuracy(net: Net, variables: Variables, x: jax.Array, y: jax.Array,
             chunk_size: int = 1024) -> float:
  """Top-1 accuracy of the model on ``(x [n, ...], y [n])``."""
  logits, _ = predict(net, variables, x, chunk_size)
  return float(jnp.mean(jnp.argmax(logits, -1) == y))
