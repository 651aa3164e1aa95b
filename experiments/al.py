r"""Runs one active-learning experiment and writes ``history.json`` and ``curve.png``.

  python -m experiments.al --dataset=digits --strategy=margin --workdir=/tmp/al

Flags left unset take the value of ``--config`` (see ``experiments/configs``). A killed run
restarted with the same flags and ``--workdir`` resumes at the first unfinished round.
"""

from absl import app, flags

from experiments import common, configs

# allow_override: the test suite imports several binaries into one process.
_CONFIG = flags.DEFINE_enum("config", "default", configs.CONFIGS, "Protocol to start from.",
    allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_al", "Output directory (resumable).",
    allow_override=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR).",
    allow_override=True)
flags.DEFINE_string("dataset", None, "Dataset name (digits, mnist, fashion_mnist, tfds names).",
    allow_override=True)
flags.DEFINE_string("model", None, "mlp, lenet or resnet18.", allow_override=True)
flags.DEFINE_string("strategy", None, "Query strategy (see jal.STRATEGIES).", allow_override=True)
flags.DEFINE_integer("seed", None, "Seed of the run.", allow_override=True)
flags.DEFINE_integer("init_size", None, "|L0|.", allow_override=True)
flags.DEFINE_integer("budget", None, "Points queried per round.", allow_override=True)
flags.DEFINE_integer("rounds", None, "Query rounds.", allow_override=True)
flags.DEFINE_integer("epochs", None, "Epochs (maximum when stop_train_acc is set).",
    allow_override=True)
flags.DEFINE_integer("batch_size", None, "Training minibatch size.", allow_override=True)
flags.DEFINE_float("learning_rate", None, "Learning rate.", allow_override=True)
flags.DEFINE_float("dropout", None, "Dropout before the head (BALD needs > 0).",
    allow_override=True)
flags.DEFINE_integer("chunk_size", None, "Rows per chunk of pool-wide inference.",
    allow_override=True)
flags.DEFINE_float("stop_train_acc", None, "Stop training once train accuracy exceeds this.",
    allow_override=True)


def _main():
  overrides = {k: flags.FLAGS[k].value for k in common.FLAG_KEYS}
  common.run(common.resolve_config(_CONFIG.value, overrides), _WORKDIR.value, _DATA_DIR.value,
             mesh=common.mesh_from_flags())


if __name__ == "__main__":
  app.run(common.main_guard(_main))
