r"""Runs one active-learning experiment and writes ``history.json`` and ``curve.png``.

  python -m experiments.al --dataset=digits --strategy=margin --workdir=/tmp/al

Flags left unset take the value of ``--config`` (see ``experiments/configs``). A killed run
restarted with the same flags and ``--workdir`` resumes at the first unfinished round.
"""

import json
import pathlib
import time

from absl import app, flags

from experiments import common, configs

_CONFIG = flags.DEFINE_enum("config", "default", configs.CONFIGS, "Protocol to start from.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_al", "Output directory (resumable).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR).")
flags.DEFINE_string("dataset", None, "Dataset name (digits, mnist, fashion_mnist, tfds names).")
flags.DEFINE_string("model", None, "mlp, lenet or resnet18.")
flags.DEFINE_string("strategy", None, "Query strategy (see jal.STRATEGIES).")
flags.DEFINE_integer("seed", None, "Seed of the run.")
flags.DEFINE_integer("init_size", None, "|L0|.")
flags.DEFINE_integer("budget", None, "Points queried per round.")
flags.DEFINE_integer("rounds", None, "Query rounds.")
flags.DEFINE_integer("epochs", None, "Epochs (maximum when stop_train_acc is set).")
flags.DEFINE_integer("batch_size", None, "Training minibatch size.")
flags.DEFINE_float("learning_rate", None, "Learning rate.")
flags.DEFINE_float("dropout", None, "Dropout before the head (BALD needs > 0).")
flags.DEFINE_integer("chunk_size", None, "Rows per chunk of pool-wide inference.")
flags.DEFINE_float("stop_train_acc", None, "Stop training once train accuracy exceeds this.")


def resolve_config(name: str, overrides: dict) -> dict:
  """Config ``name`` with the non-None ``overrides`` applied."""
  config = configs.get(name)
  unknown = set(overrides) - set(common.FLAG_KEYS)
  if unknown:
    raise ValueError(f"unknown config keys {sorted(unknown)}")
  config.update({k: v for k, v in overrides.items() if v is not None})
  return config


def run(config: dict, workdir: str, data_dir: str | None = None, verbose: bool = True) -> dict:
  """Runs the experiment of ``config`` in ``workdir``; returns the ``history.json`` dict."""
  t0 = time.perf_counter()
  data = common.load_data(config, data_dir)
  net, strategy = common.build(config, data)
  if verbose:
    print(f"{data.name}: pool {data.x_train.shape[0]}, test {data.x_test.shape[0]}, "
          f"{data.num_classes} classes; model {net.name}; strategy {strategy.name}", flush=True)
  history = common.jal.run_loop(
      common.run_key(config), data, net, common.train_config(config), strategy,
      common.loop_config(config), workdir=workdir, verbose=verbose,
      extra_config={"seed": int(config["seed"]), "dropout": net.dropout})
  summary = history.summary()
  summary["wall_seconds"] = time.perf_counter() - t0
  path = pathlib.Path(workdir) / "history.json"
  path.write_text(json.dumps(summary, indent=1))
  if verbose:
    print(f"AUBC {summary['aubc']:.4f}  F-acc {summary['f_acc']:.4f}  "
          f"({summary['wall_seconds']:.1f}s) -> {path}", flush=True)
  return summary


def main(argv):
  del argv
  overrides = {k: flags.FLAGS[k].value for k in common.FLAG_KEYS}
  run(resolve_config(_CONFIG.value, overrides), _WORKDIR.value, _DATA_DIR.value)


if __name__ == "__main__":
  app.run(main)
