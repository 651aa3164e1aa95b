"""Training from scratch on the labeled part of a fixed-size pool: ``fit``, ``fit_many``.

Shapes never depend on how many points are labeled: the labeled set is a boolean mask over the
pool, each epoch shuffles the labeled indices to the front and runs ``ceil(n_labeled / B)``
steps of a fixed minibatch size ``B`` (the last batch is topped up with repeated labeled
examples that carry zero loss weight). One compile therefore serves every AL round, and
``fit_many`` ``vmap``s the very same epoch over a leading axis of keys and masks.
"""

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jal import parallel
from jal.models.net import Net, Variables
from jal.train import epoch
from jal.train.config import TrainConfig

__all__ = ["FitResult", "fit", "fit_many", "check_pool", "place", "all_finite"]


class FitResult(NamedTuple):
  """Output of ``fit``/``fit_many``.

  Attributes:
    variables: trained model state (leading axis ``[k]`` for ``fit_many``).
    epochs: epochs run (``[]`` or ``[k]``).
    train_acc: running train accuracy of the last epoch (``[]`` or ``[k]``).
    extra: what a strategy's own ``fit`` trains besides the classifier (e.g. the parameters
      of a loss-prediction head); ``None`` for ``jal.fit``. The loop passes it to the
      strategy as ``Context.fit_extra``.
  """
  variables: Variables
  epochs: jax.Array
  train_acc: jax.Array
  extra: Any = None


def _use_fused(config: TrainConfig) -> bool:
  if config.fused_epoch is not None:
    return config.fused_epoch
  return jax.default_backend() != "cpu"


def check_pool(x, y, mask, num_classes):
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
      state = (epoch.fused_many if many else epoch.fused_one)(net, config, state, ek, x, y, mask)
    else:
      begin = epoch.begin_many if many else epoch.begin_one
      state, plan = begin(state, ek, mask, config.batch_size)
      step = epoch.step_many if many else epoch.step_one
      for s in range(int(jnp.max(plan.steps))):
        state = step(net, config, state, plan, jnp.int32(s), x, y)
      state = (epoch.end_many if many else epoch.end_one)(config, state)
    if config.stop_train_acc is not None and bool(jnp.all(state.done)):
      break
    if verbose and (e + 1) % max(1, config.epochs // 5) == 0:
      acc = float(jnp.mean(state.train_acc))
      print(f"  {what}: epoch {e + 1}/{config.epochs} train acc {acc:.3f} "
            f"({time.perf_counter() - t0:.1f}s)", flush=True)
  return FitResult(state.variables, state.epoch, state.train_acc)


def place(mesh, state, x, y, mask):
  """Parameters and optimizer state replicated; the pool split along ``data`` when its size
  allows (else replicated); the small labeled masks replicated."""
  if mesh is None:
    return state, x, y, mask
  d = mesh.shape[parallel.DATA]
  pool = (lambda a: jax.device_put(a, parallel.rows_sharding(mesh, a.ndim))) \
      if x.shape[0] % d == 0 else (lambda a: parallel.replicate(a, mesh))
  return parallel.replicate(state, mesh), pool(x), pool(y), parallel.replicate(mask, mesh)


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
    mesh: optional ``jal.parallel`` mesh: parameters replicated, minibatches (``batch_size``
      should be a multiple of the device count) and the pool split along ``data``. ``None``
      runs on the default device exactly as before.

  Returns:
    ``FitResult`` with the trained variables.
  """
  check_pool(x, y, mask, net.num_classes)
  k_init, k_train = jax.random.split(key)
  with parallel.use_mesh(mesh):
    state = epoch.init_one(net, config, k_init)
    state, x, y, mask = place(mesh, state, x, y, mask)
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
    mesh: optional ``jal.parallel`` mesh (see ``fit``); the ``k`` models are replicated and
      each one's minibatch is split along ``data``.

  Returns:
    ``FitResult`` whose leaves have a leading ``[k]`` axis.
  """
  if masks.ndim != 2 or masks.shape[0] != keys.shape[0]:
    raise ValueError(f"masks must be [k, n] with k = {keys.shape[0]}, got {masks.shape}")
  check_pool(x, y, masks, net.num_classes)
  split = jax.vmap(jax.random.split)(keys)
  with parallel.use_mesh(mesh):
    state = epoch.init_many(net, config, split[:, 0])
    state, x, y, masks = place(mesh, state, x, y, masks)
    return _run(True, net, config, state, split[:, 1], x, y, masks, verbose,
                f"fit_many[{keys.shape[0]}]")


@jax.jit
def _finite(tree) -> jax.Array:
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)
                              if jnp.issubdtype(a.dtype, jnp.inexact)]))


def all_finite(tree) -> bool:
  """Whether every float leaf of ``tree`` (e.g. trained ``Variables``) is finite: training
  that diverged (too large a learning rate, NaN inputs) leaves NaN / Inf parameters."""
  return bool(_finite(tree))
