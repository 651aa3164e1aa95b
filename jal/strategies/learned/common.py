"""Pieces shared by the learned baselines: small MLP heads, weighted means, the joint
labeled/unlabeled data stream of WAAL and VAAL, and the epoch driver.

The joint stream (BASELINES.md §2.3, DeepAL+'s ``*_Handler_joint``, the WAAL authors'
``dataset_WA``): one epoch has ``T = max(n_L, n_U)`` slots; ``t = 0..T−1`` is shuffled and slot
``t`` pairs labeled row ``L[t mod n_L]`` with unlabeled row ``U[t mod n_U]`` (the smaller set is
cycled), ``M`` slots a step. Shapes never depend on the round: the row orders are ``[n]``
arrays over the pool, the counts traced scalars, and the last short step is topped up with
repeated rows of zero weight (as ``jal.fit`` does).
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jal import parallel
from jal.train import epoch
from jal.train.config import TrainConfig

__all__ = ["linear_init", "mlp_init", "mlp_apply", "weighted_mean", "JointPlan", "joint_begin",
           "joint_batch", "use_fused", "run_epochs", "replicate"]


def linear_init(key: jax.Array, fan_in: int, fan_out: int, init: str = "torch") -> dict:
  """One dense layer ``{"w": [fan_in, fan_out], "b": [fan_out]}``.

  Args:
    init: ``"torch"`` (PyTorch's default: weight and bias ``U(±1/√fan_in)``) or ``"kaiming"``
      (Kaiming-normal, fan-in, gain √2; bias 0 — the references' ``kaiming_init``).
  """
  kw, kb = jax.random.split(key)
  if init == "torch":
    bound = 1.0 / math.sqrt(fan_in)
    return {"w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
            "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound)}
  if init == "kaiming":
    return {"w": jax.random.normal(kw, (fan_in, fan_out), jnp.float32) * math.sqrt(2 / fan_in),
            "b": jnp.zeros((fan_out,), jnp.float32)}
  raise ValueError(f"init must be 'torch' or 'kaiming', got {init!r}")


def mlp_init(key: jax.Array, sizes: tuple[int, ...], init: str = "torch") -> list:
  """Dense layers ``sizes[0] → sizes[1] → … → sizes[-1]`` (a list of ``linear_init``)."""
  keys = jax.random.split(key, len(sizes) - 1)
  return [linear_init(k, a, b, init) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp_apply(params: list, x: jax.Array) -> jax.Array:
  """``[n, sizes[0]]`` → ``[n, sizes[-1]]``: ReLU between layers, none after the last."""
  for i, layer in enumerate(params):
    x = x @ layer["w"] + layer["b"][None]
    if i < len(params) - 1:
      x = jax.nn.relu(x)
  return x


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  """``Σ w·v / max(Σ w, 1)`` over the leading axis of ``values [m]`` (weights ``[m]``)."""
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


class JointPlan(NamedTuple):
  """One epoch of the joint stream (all ``[n]`` arrays index the pool)."""
  slots: jax.Array    # [n] int32: a permutation of 0..T−1 first, then T..n−1
  lab: jax.Array      # [n] int32: labeled rows first (ascending)
  unl: jax.Array      # [n] int32: unlabeled rows first (shuffled every epoch)
  n_lab: jax.Array    # [] int32
  n_unl: jax.Array    # [] int32, unlabeled rows used this epoch (≤ the cap)
  total: jax.Array    # [] int32, T = max(n_lab, n_unl)
  steps: jax.Array    # [] int32, ceil(T / M)
  key: jax.Array      # PRNG key of the epoch's steps


def joint_begin(key: jax.Array, mask: jax.Array, batch_size: int,
                unlabeled_cap: int | None = None) -> JointPlan:
  """Plans one epoch of the joint stream over the pool ``mask [n]`` (True = labeled).

  ``unlabeled_cap`` (static) bounds the unlabeled rows of the epoch: a fresh random subset of
  ``min(n_U, cap)`` unlabeled rows per epoch, so the epoch has
  ``ceil(max(n_L, min(n_U, cap)) / M)`` steps and still visits every labeled row. ``None``
  is the references' stream (all of U every epoch).
  """
  n = mask.shape[0]
  k_slots, k_unl, k_steps = jax.random.split(key, 3)
  n_lab = jnp.maximum(jnp.sum(mask, dtype=jnp.int32), 1)
  n_unl = jnp.maximum(jnp.sum(~mask, dtype=jnp.int32), 1)
  if unlabeled_cap is not None:
    n_unl = jnp.minimum(n_unl, jnp.int32(unlabeled_cap))
  total = jnp.maximum(n_lab, n_unl)
  lab = jnp.argsort(~mask, stable=True).astype(jnp.int32)
  unl = jnp.argsort(jnp.where(mask, 2.0, jax.random.uniform(k_unl, (n,)))).astype(jnp.int32)
  slot_keys = jnp.where(jnp.arange(n) < total, jax.random.uniform(k_slots, (n,)), 2.0)
  slots = jnp.argsort(slot_keys).astype(jnp.int32)
  steps = (total + batch_size - 1) // batch_size
  return JointPlan(slots, lab, unl, n_lab, n_unl, total, steps, k_steps)


def joint_batch(plan: JointPlan, s: jax.Array, batch_size: int):
  """Step ``s`` of the epoch: ``(labeled rows [M], unlabeled rows [M], weights [M])``.

  Slots past ``T`` (the top-up of the last step) repeat earlier slots with weight 0.
  """
  pos = s * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
  weights = (pos < plan.total).astype(jnp.float32)
  t = plan.slots[pos % plan.total]
  return plan.lab[t % plan.n_lab], plan.unl[t % plan.n_unl], weights


def commit_step(new: Any, old: Any, active: jax.Array) -> Any:
  """``new`` where the step is ``active`` (a real step of an unfinished epoch), else ``old``:
  the padded steps of a fused epoch and the steps after the stopping rule change nothing."""
  return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)


def end_epoch(config: TrainConfig, state: Any) -> Any:
  """``state`` (a NamedTuple with a ``train`` field) after ``jal.train.epoch.end``."""
  return state._replace(train=epoch.end(config, state.train))


def use_fused(config: TrainConfig) -> bool:
  """Fused (device-loop) epochs: ``config.fused_epoch``, else on accelerators only (as
  ``jal.fit``: on XLA:CPU a step inside a device loop runs 2–5× slower)."""
  if config.fused_epoch is not None:
    return config.fused_epoch
  return jax.default_backend() != "cpu"


def run_epochs(state: Any, key: jax.Array, epochs: int, *,
               begin: Callable[[Any, jax.Array], tuple[Any, Any]],
               step: Callable[[Any, Any, jax.Array], Any],
               end: Callable[[Any], Any],
               fused: Callable[[Any, jax.Array], Any] | None = None,
               done: Callable[[Any], bool] | None = None) -> Any:
  """Runs ``epochs`` epochs: ``fused(state, epoch_key)`` when given, else ``begin``, a host
  loop of ``step(state, plan, s)`` over the plan's ``steps`` and ``end``; stops early when
  ``done(state)`` (the stopping rule) holds. Epoch ``e`` uses ``fold_in(key, e)``."""
  for e in range(epochs):
    ek = jax.random.fold_in(key, e)
    if fused is not None:
      state = fused(state, ek)
    else:
      state, plan = begin(state, ek)
      for s in range(int(plan.steps)):
        state = step(state, plan, jnp.int32(s))
      state = end(state)
    if done is not None and done(state):
      break
  return state


def replicate(tree: Any, mesh) -> Any:
  """``tree`` replicated over ``mesh`` (unchanged for ``mesh=None``)."""
  return tree if mesh is None else parallel.replicate(tree, mesh)
