r"""Does BRAL-T's RL choice track the GradNd-GT oracle? One round at several labeled sizes.

  python -m experiments.bralt_diagnose --config=bralt_fmnist_reduced --n_labeled=500,1500 \
      --data_dir=../shared/data --out=/tmp/bralt_diagnose.json

For each ``|L|``: trains the target model as the config says (SuperLoss for BRAL-T) on a
random labeled set, runs BRAL-T's selection, computes the oracle (true-label GraNd on the
unlabeled pool) and reports: the reward net's loss before/after training, the Spearman
correlation between each action's predicted reward and its members' mean oracle GraNd, and
the oracle percentile of the batches chosen by BRAL-T, GradNd-GT, Margin and Random.
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import jal
from experiments import common, configs
from jal.bralt import diagnostics, trustset
from jal.bralt.strategy import balanced_top, bral_t_strategy

_CONFIG = flags.DEFINE_enum("config", "bralt_fmnist_reduced", configs.CONFIGS, "Protocol.",
    allow_override=True)
_N_LABELED = flags.DEFINE_list("n_labeled", ["500", "1500"], "Labeled-set sizes.",
    allow_override=True)
_SEED = flags.DEFINE_integer("seed", 0, "Seed.", allow_override=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR).",
    allow_override=True)
_OUT = flags.DEFINE_string("out", "/tmp/bralt_diagnose.json", "JSON report.",
    allow_override=True)


def diagnose(config: dict, data: jal.data.Dataset, n_labeled: int, seed: int) -> dict:
  """One round of BRAL-T at ``n_labeled`` labels against the true-label GraNd oracle."""
  config = {**config, "strategy": "bral_t"}
  net, _ = common.build(config, data)
  kw = {**common.strategy_kwargs(config), "full_info": True}
  strategy = bral_t_strategy(**kw)
  k_init, k_fit, k_score, k_pick, k_rand = jax.random.split(jax.random.key(seed), 5)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  mask = jal.initial_mask(k_init, x.shape[0], n_labeled)
  t0 = time.perf_counter()
  variables = jal.fit(k_fit, net, common.train_config(config), x, y, mask).variables
  ctx = jal.Context(net, variables, x, y, mask, data.num_classes, config["chunk_size"])
  budget = int(config["budget"])
  aux = strategy.score(k_score, ctx)
  idx, info = strategy.pick(k_pick, ctx, aux, budget)
  unl = ~np.asarray(mask)
  rows = np.flatnonzero(unl)
  oracle = np.zeros(x.shape[0], np.float32)
  oracle[rows] = np.asarray(jal.scores.grand(net, variables, x[rows], y[rows], 64))
  k = data.num_classes
  gt = np.asarray(balanced_top(jnp.asarray(np.where(unl, oracle, -np.inf)), y, jnp.asarray(unl),
                               k, trustset.per_class_size(budget, k), budget))
  margin = jal.select(jal.get_strategy("margin"), k_rand, ctx, budget)
  rand = jal.select(jal.get_strategy("random"), k_rand, ctx, budget)
  losses = info["losses"]
  return {
      "n_labeled": n_labeled, "seconds": time.perf_counter() - t0,
      "test_accuracy": jal.accuracy(net, variables, data.x_test, data.y_test),
      "reward_loss_first_sampling": float(np.mean(losses[0])),
      "reward_loss_last_sampling": float(np.mean(losses[-1])),
      "action_agreement": diagnostics.action_agreement(info["pred"], info["act_assign"], oracle),
      "overlap_with_gradnd_gt": float(np.isin(idx, gt).mean()),
      "batch_oracle": {name: diagnostics.batch_quality(b, oracle, unl)
                       for name, b in (("bral_t", idx), ("gradnd_gt", gt), ("margin", margin),
                                       ("random", rand))},
  }


def _main():
  config = common.resolve_config(_CONFIG.value, {})
  data = common.load_data(config, _DATA_DIR.value)
  out = [diagnose(config, data, int(n), _SEED.value) for n in _N_LABELED.value]
  for r in out:
    print(json.dumps(r), flush=True)
  with open(_OUT.value, "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  app.run(common.main_guard(_main))
