r"""Unit costs of a full RAMBO trial's two large phases on this machine (synthetic images).

  python -m experiments.rambo_speed [--pool=200] [--pairs=800] [--subsets=48] [--steps=50]

Prints JSON with the time of one inner Adam step of the utility model (ψ over ``pool`` 28×28
images, ``pairs`` pairs, through ``train_plain``), of one hypergradient and λ step (10 CG
steps, through ``train_bilevel`` with T = 1, the inner step subtracted), and of one LeNet-5
utility training of 20 epochs on a random subset of size U{2..pool} (``fit_subsets``, compiles
excluded). The SPEC schedule runs 6,000 inner steps, 60 hypergradients and 1,000 trainings per
trial; ``full_trial_floor_s`` multiplies them out (the real trainings stop early at 99% train
accuracy, ≈ 18 epochs, and pay compiles).
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import jal
from experiments import common
from jal.rambo import BilevelConfig, PairData, make_set_net, train_bilevel, train_plain
from jal.train import fit_subsets

_POOL = flags.DEFINE_integer("pool", 200, "|S0|: images ψ runs over per step.", lower_bound=2)
_PAIRS = flags.DEFINE_integer("pairs", 800, "Utility pairs in D.", lower_bound=1)
_SUBSETS = flags.DEFINE_integer("subsets", 48, "LeNet trainings timed.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 50, "Inner steps timed.", lower_bound=1)


def _timed(fn) -> float:
  t = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t


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
  _timed(lambda: train_plain(set_net, cfg, params, x, data, 2))  # compile
  inner = _timed(lambda: train_plain(set_net, cfg, params, x, data, steps)) / steps
  k = 5
  hyper_cfg = BilevelConfig(outer_steps=k, inner_steps=1)  # a jit static argument
  _timed(lambda: train_bilevel(set_net, hyper_cfg, params, x, data))  # compile
  hyper = _timed(lambda: train_bilevel(set_net, hyper_cfg, params, x, data)) / k - inner

  net = jal.make_net("lenet", (28, 28, 1), 10)
  tc = jal.TrainConfig(epochs=20)
  sizes = rng.integers(2, pool + 1, subsets)
  sub = np.zeros((subsets, pool), bool)
  for i, s in enumerate(sizes):
    sub[i, rng.permutation(pool)[:s]] = True
  keys = jax.random.split(jax.random.key(seed), subsets)
  _timed(lambda: fit_subsets(keys, net, tc, x, y, sub).variables)  # compile
  lenet = _timed(lambda: fit_subsets(keys, net, tc, x, y, sub).variables) / subsets
  return {"inner_step_s": inner, "hypergradient_step_s": hyper, "lenet_training_s": lenet,
          "full_trial_floor_s": 6000 * inner + 60 * hyper + 1000 * lenet,
          "settings": {"pool": pool, "pairs": pairs, "subsets": subsets, "steps": steps}}


def main(argv):
  del argv
  common.compilation_cache_from_flags()
  print(json.dumps(unit_costs(_POOL.value, _PAIRS.value, _SUBSETS.value, _STEPS.value),
                   indent=1), flush=True)


if __name__ == "__main__":
  app.run(main)
