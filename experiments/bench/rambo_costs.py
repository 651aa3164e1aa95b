"""Unit costs of a full RAMBO trial's two large phases (``experiments.bench.rambo_speed``)."""

import jax
import jax.numpy as jnp
import numpy as np

import jal
from experiments.bench import timing
from jal.rambo import BilevelConfig, PairData, make_set_net, train_bilevel, train_plain
from jal.train import fit_subsets

__all__ = ["unit_costs"]


def unit_costs(pool: int, pairs: int, subsets: int, steps: int, seed: int = 0) -> dict:
  """Seconds per inner step, per hypergradient step and per LeNet training (see module doc)."""
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.random((pool, 28, 28, 1), np.float32))
  y = jnp.asarray(rng.integers(0, 10, pool))
  masks = jnp.asarray(rng.random((2, pairs, pool)) < 0.5)
  u = jnp.asarray(rng.random((4, pairs), np.float32))
  data = PairData(masks[0], masks[1], u[0], u[1], u[2], u[3], jnp.ones(pairs))
  set_net = make_set_net((28, 28, 1))
  params = set_net.init(jax.random.key(seed))
  cfg = BilevelConfig()
  timing.seconds(lambda: train_plain(set_net, cfg, params, x, data, 2))  # compile
  inner = timing.seconds(lambda: train_plain(set_net, cfg, params, x, data, steps)) / steps
  k = 5
  hyper_cfg = BilevelConfig(outer_steps=k, inner_steps=1)  # a jit static argument
  timing.seconds(lambda: train_bilevel(set_net, hyper_cfg, params, x, data))  # compile
  hyper = timing.seconds(lambda: train_bilevel(set_net, hyper_cfg, params, x, data)) / k - inner

  net = jal.make_net("lenet", (28, 28, 1), 10)
  tc = jal.TrainConfig(epochs=20)
  sizes = rng.integers(2, pool + 1, subsets)
  sub = np.zeros((subsets, pool), bool)
  for i, s in enumerate(sizes):
    sub[i, rng.permutation(pool)[:s]] = True
  keys = jax.random.split(jax.random.key(seed), subsets)
  timing.seconds(lambda: fit_subsets(keys, net, tc, x, y, sub).variables)  # compile
  lenet = timing.seconds(lambda: fit_subsets(keys, net, tc, x, y, sub).variables) / subsets
  return {"inner_step_s": inner, "hypergradient_step_s": hyper, "lenet_training_s": lenet,
          "full_trial_floor_s": 6000 * inner + 60 * hyper + 1000 * lenet,
          "settings": {"pool": pool, "pairs": pairs, "subsets": subsets, "steps": steps}}
