r"""Runs one active-learning experiment; the loop writes ``history.json`` and ``curve.png``.

  python -m experiments.al --workdir=/tmp/al
  python -m experiments.al --config=experiments/configs/bralt_fmnist_reduced.py \
      --config.seed=1 --config.data.train_transform.name=long_tail --data_dir=../shared/data

``--config`` is a config of the ``"al"`` family (a path, or a name of ``experiments/configs``;
default: ``default``, digits / MLP / Margin, about a minute on 2 CPU cores); every field is
overridable with ``--config.<section>.<key>=value``. A killed run restarted with the same
flags and ``--workdir`` resumes at the first unfinished round.
"""

from absl import flags

from experiments import runs, runtime

_CONFIG = runtime.define_config("al", default="default")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_al", "Output directory (resumable).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")


def _main():
  runs.run_al(_CONFIG.value, _WORKDIR.value, _DATA_DIR.value, mesh=runtime.mesh())


if __name__ == "__main__":
  runtime.run(_main, "al", _CONFIG)
