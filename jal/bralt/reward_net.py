"""BRAL-T's reward net R_φ(s, a): a 512-512 ReLU MLP, a replay buffer and SGD steps.

The RL problem is a one-step bandit (one-step DQN, Eq. 10), so R_φ is trained by MSE
regression of the observed rewards. Everything is plain pytrees and pure functions: the
buffer is fixed-capacity arrays plus a counter (circular), inputs are standardised with
buffer statistics and targets are optionally divided by the buffer's mean ``|R|`` (SPEC A9),
and the optimiser is ``optax.sgd`` without momentum.

Example:
  >>> import jax, jax.numpy as jnp
  >>> buf = init_buffer(8, 4, 2)
  >>> buf = push(buf, jnp.ones((3, 4)), jnp.ones((3, 2)), -jnp.ones(3), jnp.ones(3, bool))
  >>> int(buf.count)
  3
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["Buffer", "Normalizer", "RewardModel", "init_buffer", "push", "init_params",
           "mlp_apply", "fit_normalizer", "init_reward_model", "train_steps", "predict_reward"]

HIDDEN = (512, 512)


class Buffer(NamedTuple):
  """Circular replay buffer of (state, action, reward) tuples.

  Attributes:
    s: ``[cap, ds]`` states.
    a: ``[cap, da]`` actions.
    r: ``[cap]`` rewards.
    count: ``[]`` int32 total tuples ever pushed (slot = count mod cap).
  """
  s: jax.Array
  a: jax.Array
  r: jax.Array
  count: jax.Array


class Normalizer(NamedTuple):
  """Input standardisation and target scale from buffer statistics.

  Attributes:
    mean: ``[ds + da]`` input mean.
    std: ``[ds + da]`` input std (floored).
    scale: ``[]`` target divisor (mean ``|R|`` or 1).
  """
  mean: jax.Array
  std: jax.Array
  scale: jax.Array


class RewardModel(NamedTuple):
  """Trainable reward net state.

  Attributes:
    params: list of ``(W [in, out], b [out])`` per layer.
    opt_state: optax SGD state.
    norm: the :class:`Normalizer` used by the last training steps.
  """
  params: list
  opt_state: optax.OptState
  norm: Normalizer


def init_buffer(capacity: int, state_dim: int, action_dim: int) -> Buffer:
  """An empty buffer of static ``capacity``."""
  return Buffer(jnp.zeros((capacity, state_dim)), jnp.zeros((capacity, action_dim)),
                jnp.zeros((capacity,)), jnp.int32(0))


def push(buf: Buffer, s: jax.Array, a: jax.Array, r: jax.Array, valid: jax.Array) -> Buffer:
  """Appends the ``valid`` rows of ``(s [p, ds], a [p, da], r [p])`` (static ``p``)."""
  cap = buf.r.shape[0]
  valid = valid.astype(bool)
  offset = jnp.cumsum(valid.astype(jnp.int32)) - 1
  slot = jnp.where(valid, (buf.count + offset) % cap, cap)  # cap = out of range: dropped
  n_new = jnp.sum(valid.astype(jnp.int32))
  # Keep only the last ``cap`` valid rows when more than ``cap`` arrive at once.
  slot = jnp.where(offset >= n_new - cap, slot, cap)
  return Buffer(buf.s.at[slot].set(s, mode="drop"), buf.a.at[slot].set(a, mode="drop"),
                buf.r.at[slot].set(r, mode="drop"), buf.count + n_new)


def init_params(key: jax.Array, in_dim: int, hidden: tuple[int, ...] = HIDDEN) -> list:
  """PyTorch-default (uniform ±1/√fan_in) init of an MLP ``in_dim → hidden → 1``."""
  dims = (in_dim, *hidden, 1)
  params = []
  for k, (i, o) in zip(jax.random.split(key, len(dims) - 1), zip(dims[:-1], dims[1:])):
    kw, kb = jax.random.split(k)
    bound = 1.0 / jnp.sqrt(i)
    params.append((jax.random.uniform(kw, (i, o), minval=-bound, maxval=bound),
                   jax.random.uniform(kb, (o,), minval=-bound, maxval=bound)))
  return params


def mlp_apply(params: list, z: jax.Array) -> jax.Array:
  """``[n, in] -> [n]`` MLP output with ReLU hidden layers."""
  for w, b in params[:-1]:
    z = jax.nn.relu(z @ w + b[None, :])
  w, b = params[-1]
  return (z @ w + b[None, :])[:, 0]


def _filled(buf: Buffer) -> tuple[jax.Array, jax.Array]:
  cap = buf.r.shape[0]
  n = jnp.minimum(buf.count, cap)
  return jnp.arange(cap) < n, n


def fit_normalizer(buf: Buffer, scale_targets: bool = True) -> Normalizer:
  """Mean/std of the buffer's inputs and mean ``|R|`` of its rewards (filled rows only)."""
  ok, n = _filled(buf)
  w = ok.astype(jnp.float32) / jnp.maximum(n, 1).astype(jnp.float32)
  z = jnp.concatenate([buf.s, buf.a], axis=1)
  mean = w @ z
  std = jnp.sqrt(w @ (z - mean[None, :]) ** 2)
  scale = jnp.sum(w * jnp.abs(buf.r)) if scale_targets else jnp.float32(1.0)
  return Normalizer(mean, jnp.maximum(std, 1e-6), jnp.where(scale > 0, scale, 1.0))


def _inputs(norm: Normalizer, s: jax.Array, a: jax.Array) -> jax.Array:
  return (jnp.concatenate([s, a], axis=1) - norm.mean[None, :]) / norm.std[None, :]


def init_reward_model(key: jax.Array, state_dim: int, action_dim: int,
                      learning_rate: float = 0.01, hidden: tuple[int, ...] = HIDDEN
                      ) -> RewardModel:
  """A freshly initialised reward net (BRAL-T re-initialises it every AL round)."""
  d = state_dim + action_dim
  params = init_params(key, d, hidden)
  norm = Normalizer(jnp.zeros((d,)), jnp.ones((d,)), jnp.float32(1.0))
  return RewardModel(params, optax.sgd(learning_rate).init(params), norm)


@functools.partial(jax.jit, static_argnames=("steps", "batch_size", "learning_rate",
                                             "scale_targets"))
def train_steps(key: jax.Array, model: RewardModel, buf: Buffer, steps: int = 20,
                batch_size: int = 100, learning_rate: float = 0.01,
                scale_targets: bool = True) -> tuple[RewardModel, jax.Array]:
  """``steps`` SGD steps on minibatches drawn uniformly (with replacement) from the buffer.

  The normaliser is refitted on the current buffer first; the steps run in one ``lax.scan``.

  Args:
    key: PRNG key of the minibatches.
    model: current reward model.
    buf: the replay buffer (must hold at least one tuple).
    steps: SGD steps (BRAL-T: 20 per sampling).
    batch_size: minibatch size (BRAL-T: 100).
    learning_rate: SGD step size (BRAL-T: 0.01).
    scale_targets: divide the targets by the buffer's mean ``|R|``.

  Returns:
    ``(model, losses [steps])`` — MSE in normalised target units before each step.
  """
  opt = optax.sgd(learning_rate)
  norm = fit_normalizer(buf, scale_targets)
  _, n = _filled(buf)

  def loss_fn(params, s, a, r):
    return jnp.mean((mlp_apply(params, _inputs(norm, s, a)) - r / norm.scale) ** 2)

  def step(carry, k):
    params, opt_state = carry
    idx = jax.random.randint(k, (batch_size,), 0, jnp.maximum(n, 1))
    loss, g = jax.value_and_grad(loss_fn)(params, buf.s[idx], buf.a[idx], buf.r[idx])
    updates, opt_state = opt.update(g, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  (params, opt_state), losses = jax.lax.scan(step, (model.params, model.opt_state),
                                             jax.random.split(key, steps))
  return RewardModel(params, opt_state, norm), losses


def predict_reward(model: RewardModel, s: jax.Array, a: jax.Array) -> jax.Array:
  """Predicted rewards ``[p]`` of ``(s [p, ds], a [p, da])``, in raw reward units."""
  return mlp_apply(model.params, _inputs(model.norm, s, a)) * model.norm.scale
