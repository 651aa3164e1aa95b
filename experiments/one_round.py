r"""One-round (non-adaptive) acquisition: RAMBO, DULO or a jal baseline; writes ``result.json``.

  python -m experiments.one_round --workdir=/tmp/one_round
  python -m experiments.one_round --config=rambo_mnist --data_dir=/work/shared/data \
      --config.rambo.budget=700 --config.rambo.utility.bilevel=false \
      --workdir=/tmp/rambo_mnist_b700_nobilevel

``--config`` is a config of the ``"one_round"`` family (default ``rambo_digits``: RAMBO on the
embedded digits data, about a minute on 2 CPU cores). ``--config.strategy.name`` is one of
rambo, dulo, null (greedy-margin without a utility model, RAMBO's control) or a baseline
(random, margin, badge, coreset, lossprediction = RAMBO's LLAL, waal, vaal).
``rambo.utility.{bilevel,ot,ranknet}`` select the 8 ablation rows of RAMBO's Tables 3/4;
``rambo.utility.hypergrad`` (SPEC §2.4: cg, custom_root, itd) and ``rambo.aug_distance`` (R5:
euclidean, sinkhorn) are the REC readings; ``data.pool`` (``noise_rate``, ``imbalance``: R8)
changes the pool after loading, before S0 is drawn.
"""

from absl import flags

from experiments import runs, runtime

_CONFIG = runtime.define_config("one_round", default="rambo_digits")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_one_round", "Output directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")


def _main():
  runs.run_one_round(_CONFIG.value, _WORKDIR.value, _DATA_DIR.value)


if __name__ == "__main__":
  runtime.run(_main, "one_round", _CONFIG)
