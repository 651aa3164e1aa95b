"""Fast training of many small classifiers on subsets of one small pool (RAMBO on XLA:CPU).

RAMBO's ground-truth utilities train ~1,000 LeNets on random subsets of the 200 points of S₀
with the "train accuracy > 99% or 100 epochs" rule. ``fit_subsets`` gives model ``i`` exactly
the computation of ``fit(keys[i], net, config, x, y, masks[i])`` (the same epoch kernel,
``jal.train.epoch``) but runs each epoch as one straight-line compiled program whose step
count is known on the host. Measured on this 2-core CPU (BUILD_NOTES.md): device loops
(``while_loop``/``fori_loop``) and ``vmap`` over models are both slower per model than this.
LeNet-5's convolutions run as matrix products over conv1 patches of the pool, extracted once
(``jal.models.patch_lenet``): same parameters, same function.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jal.models.net import Net
from jal.models.patch_lenet import conv_patches, patch_lenet
from jal.parallel.host_threads import map_threads
from jal.train import epoch
from jal.train.config import TrainConfig
from jal.train.trainer import FitResult

__all__ = ["fit_subsets"]


def _epoch(net: Net, config: TrainConfig, steps: int, state, key, mask, x, y):
  """One epoch of ``fit`` with a static step count: straight-line code, no device loop."""
  state, plan = epoch.begin(state, key, mask, config.batch_size)
  for s in range(steps):
    state = epoch.step(net, config, state, plan, jnp.int32(s), x, y)
  return epoch.end(config, state)


_epoch_jit = jax.jit(_epoch, static_argnums=(0, 1, 2), donate_argnums=(3,))


def _fit_one(net, config, key, mask, x, y):
  """``fit`` with one compiled program per epoch (steps known on the host)."""
  m = int(np.sum(mask))
  if m <= config.batch_size and config.augment == "none" and not net.dropout:
    # One minibatch per epoch: a smaller static batch is the same step (the extra rows of a
    # batch carry zero weight and there is no dropout/augmentation); it drops wasted rows.
    config = dataclasses.replace(config, batch_size=max(8, 1 << math.ceil(math.log2(m))))
  steps = -(-m // config.batch_size)
  k_init, k_train = jax.random.split(key)
  state = epoch.init_one(net, config, k_init)
  mask = jnp.asarray(mask)
  for e in range(config.epochs):
    state = _epoch_jit(net, config, steps, state, jax.random.fold_in(k_train, e), mask, x, y)
    if config.stop_train_acc is not None and bool(state.done):
      break
  return state


def fit_subsets(keys: jax.Array, net: Net, config: TrainConfig, x: jax.Array, y: jax.Array,
                masks: jax.Array, workers: int | None = None) -> FitResult:
  """Model ``i`` = ``fit(keys[i], net, config, x, y, masks[i])``, trained fast on XLA:CPU.

  Models are trained one after the other (on XLA:CPU ``vmap``ped steps and device loops are
  slower per model than sequential straight-line programs, BUILD_NOTES.md), each epoch one
  compiled program with the step count fixed on the host; LeNet-5 runs on shared conv1
  patches (``patch_lenet``).

  Args:
    keys: ``[k]`` PRNG keys.
    net: the classifier.
    config: training rule.
    x: small pool ``[n, H, W, C]`` (e.g. S₀).
    y: ``[n]`` labels.
    masks: ``[k, n]`` bool, non-empty subsets.
    workers: threads training models side by side (``None``: the CPU cores on a CPU
      backend, 1 elsewhere).

  Returns:
    ``FitResult`` with a leading ``[k]`` axis (variables of ``net``).
  """
  masks = np.asarray(masks, bool)
  if not np.all(masks.sum(-1) > 0):
    raise ValueError("cannot train on an empty subset")
  if net.name == "lenet" and not net.dropout and min(x.shape[1:3]) >= 20:
    net, x = patch_lenet(net), conv_patches(jnp.asarray(x))
  x, y = jnp.asarray(x), jnp.asarray(y)
  # Models train side by side on host threads (jal.parallel.host_threads): same results.
  states = map_threads(
      lambda i: jax.block_until_ready(_fit_one(net, config, keys[i], masks[i], x, y)),
      range(masks.shape[0]), workers)
  st = jax.tree.map(lambda *a: jnp.stack(a), *states)
  return FitResult(st.variables, st.epoch, st.train_acc)
