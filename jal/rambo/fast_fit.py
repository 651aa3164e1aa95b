"""Fast training of many small classifiers on subsets of one small pool (RAMBO on XLA:CPU).

RAMBO's ground-truth utilities train ~1,000 LeNets on random subsets of the 200 points of S₀
with the "train accuracy > 99% or 100 epochs" rule. ``fit_subsets`` gives model ``i`` exactly
the computation of ``fit(keys[i], net, config, x, y, masks[i])`` (it reuses ``jal.train``'s
epoch plan, step and stopping rule) but runs each epoch as one straight-line compiled program
whose step count is known on the host. Measured on this 2-core CPU (BUILD_NOTES.md): device
loops (``while_loop``/``fori_loop``) and ``vmap`` over models are both slower per model than
this. LeNet-5's and the utility model ψ's convolutions are rewritten as matrix products over
conv1 patches of the pool, extracted once (``patch_lenet``, ``patch_set_net``): same
parameters, same function.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jal.host_threads import map_threads
from jal.models.net import Net, Variables
from jal.rambo.utility_model import SetNet
from jal.train import FitResult, TrainConfig, _begin, _end, _init_state, _step

__all__ = ["conv_patches", "patch_lenet", "fit_subsets", "patch_set_net"]


def conv_patches(x: jax.Array, k: int = 5) -> jax.Array:
  """'VALID' ``k×k`` patches of ``x [n, H, W, C]`` → ``[n, H−k+1, W−k+1, k·k·C]``.

  The last axis is ordered ``(kh, kw, c)``, i.e. it matches ``kernel.reshape(k*k*C, out)``
  of a flax ``Conv`` kernel ``[k, k, C, out]``.
  """
  h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
  cols = [x[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)]
  return jnp.concatenate(cols, axis=-1)


def _pool2(h: jax.Array) -> jax.Array:
  n, hh, ww, c = h.shape
  return jnp.max(jnp.reshape(h, (n, hh // 2, 2, ww // 2, 2, c)), axis=(2, 4))


def _val(p):
  return p.get_value() if hasattr(p, "get_value") else p


def _patch_forward(params, patches: jax.Array):
  """LeNet-5 ('VALID', 28×28) on conv1 patches ``[b, 24, 24, 25·C]`` → logits, embedding."""
  k1, b1 = _val(params["conv1"]["kernel"]), _val(params["conv1"]["bias"])
  k2, b2 = _val(params["conv2"]["kernel"]), _val(params["conv2"]["bias"])
  w1, w2 = jnp.reshape(k1, (-1, k1.shape[-1])), jnp.reshape(k2, (-1, k2.shape[-1]))
  h = jnp.einsum("bhwp,pc->bhwc", patches, w1) + b1[None, None, None]
  h = _pool2(jax.nn.relu(h))
  h = jnp.einsum("bhwp,pc->bhwc", conv_patches(h), w2) + b2[None, None, None]
  h = _pool2(jax.nn.relu(h))
  h = jnp.reshape(h, (h.shape[0], -1))
  lin = lambda name, t: t @ _val(params[name]["kernel"]) + _val(params[name]["bias"])[None]
  h = jax.nn.relu(lin("fc1", h))
  h = jax.nn.relu(lin("fc2", h))
  return lin("head", h), h


class _PatchNet(Net):
  """``Net`` of LeNet-5 whose inputs are conv1 patches (see ``patch_lenet``)."""

  def apply(self, variables: Variables, x: jax.Array, *, train: bool = False,
            dropout: bool | None = None, key: jax.Array | None = None):
    del train, dropout, key  # no dropout, no BatchNorm (checked in patch_lenet)
    logits, emb = _patch_forward(variables.params, x)
    return logits, emb, variables.extra


def patch_lenet(net: Net) -> Net:
  """The same LeNet-5 (same ``init``, same parameters) taking conv1 patches as input.

  Feed it ``conv_patches(x)`` instead of ``x [n, 28, 28, C]``.

  Raises:
    ValueError: for anything but a dropout-free LeNet-5 on images of at least 20 px.
  """
  if net.name != "lenet" or net.dropout:
    raise ValueError(f"patch_lenet needs a dropout-free LeNet-5, got {net.name!r} "
                     f"(dropout {net.dropout})")
  return _PatchNet(*net._replace(name="lenet/patches"))



def _epoch(net: Net, config: TrainConfig, steps: int, state, key, mask, x, y):
  """One epoch of ``fit`` with a static step count: straight-line code, no device loop."""
  state, plan = _begin(state, key, mask, config.batch_size)
  for s in range(steps):
    state = _step(net, config, state, plan, jnp.int32(s), x, y)
  return _end(config, state)


_init_jit = jax.jit(_init_state, static_argnums=(0, 1))
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
  state = _init_jit(net, config, k_init)
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
  # Models train side by side on host threads (jal.host_threads): same results.
  states = map_threads(
      lambda i: jax.block_until_ready(_fit_one(net, config, keys[i], masks[i], x, y)),
      range(masks.shape[0]), workers)
  st = jax.tree.map(lambda *a: jnp.stack(a), *states)
  return FitResult(st.variables, st.epoch, st.train_acc)


def _patch_psi(params, patches: jax.Array) -> jax.Array:
  """The utility model's CNN ψ (``utility_model._CNN``, no dropout) on conv1 patches."""
  k1, b1 = _val(params["conv1"]["kernel"]), _val(params["conv1"]["bias"])
  k2, b2 = _val(params["conv2"]["kernel"]), _val(params["conv2"]["bias"])
  w1, w2 = jnp.reshape(k1, (-1, k1.shape[-1])), jnp.reshape(k2, (-1, k2.shape[-1]))
  h = jnp.einsum("bhwp,pc->bhwc", patches, w1) + b1[None, None, None]
  h = jax.nn.relu(_pool2(h))
  h = jnp.einsum("bhwp,pc->bhwc", conv_patches(h), w2) + b2[None, None, None]
  h = jax.nn.relu(_pool2(h))
  h = jnp.reshape(h, (h.shape[0], -1))
  lin = lambda name, t: t @ _val(params[name]["kernel"]) + _val(params[name]["bias"])[None]
  return jax.nn.relu(lin("fc2", jax.nn.relu(lin("fc1", h))))


class _PatchSetNet(SetNet):
  """``SetNet`` whose pool elements are conv1 patches (deterministic ψ only)."""

  def elements(self, params, x, key=None):
    if key is not None:
      raise ValueError("the patch form of ψ has no dropout")
    return _patch_psi(params["psi"], x)

  def __hash__(self):
    return hash(("patches", self.graphdef))

  def __eq__(self, other):
    return isinstance(other, _PatchSetNet) and self.graphdef == other.graphdef


def patch_set_net(set_net: SetNet, params, pool: jax.Array):
  """``(set_net′, pool′)`` computing the same utility model faster on a fixed image pool.

  For a CNN ψ on ``[n, H, W, C]`` images, ψ's conv1 patches of the pool are extracted once and
  its convolutions run as matrix products; otherwise the inputs come back unchanged.
  """
  if isinstance(set_net, _PatchSetNet) or pool.ndim != 4 or "conv1" not in params["psi"]:
    return set_net, pool
  return _PatchSetNet(*set_net), conv_patches(jnp.asarray(pool))
