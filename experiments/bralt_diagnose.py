r"""Does BRAL-T's RL choice track the GradNd-GT oracle? One round at several labeled sizes.

  python -m experiments.bralt_diagnose --out=/tmp/bralt_diagnose.json
  python -m experiments.bralt_diagnose --config=bralt_fmnist_reduced --n_labeled=500,1500 \
      --data_dir=../shared/data --out=/tmp/bralt_diagnose.json

For each ``|L|`` (``experiments.diagnostics.bralt_round``): trains the target model as the
config says (SuperLoss for BRAL-T) on a random labeled set, runs BRAL-T's selection, computes
the oracle (true-label GraNd on the unlabeled pool) and reports the reward net's loss
before/after training, the Spearman correlation between each action's predicted reward and its
members' mean oracle GraNd, and the oracle percentile of the batches chosen by BRAL-T,
GradNd-GT, Margin and Random. ``--config`` is a config of the ``"al"`` family (default
``bralt_digits``); the seed is ``--config.seed``.
"""

import json

from absl import flags

from experiments import build, diagnostics, runtime

_CONFIG = runtime.define_config("bralt_diagnose", default="bralt_digits")
_N_LABELED = flags.DEFINE_list("n_labeled", ["100", "300"], "Labeled-set sizes.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")
_OUT = flags.DEFINE_string("out", "/tmp/bralt_diagnose.json", "JSON report.")


def _main():
  config = _CONFIG.value
  data = build.dataset(config, _DATA_DIR.value)
  out = [diagnostics.bralt_round(config, data, int(n), int(config.seed))
         for n in _N_LABELED.value]
  for r in out:
    print(json.dumps(r), flush=True)
  with open(_OUT.value, "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  runtime.run(_main, "bralt_diagnose", _CONFIG)
