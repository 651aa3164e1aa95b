r"""Accelerator benchmark of jal: matmul GFLOP/s, score throughput, fit, AL round, fit_many.

  python -m experiments.bench --out=/tmp/bench.json
  python -m experiments.bench --config.sections=machine,scores
  python -m experiments.bench --config.protocol=deepal --config.sizes.deepal_rounds=1 \
      --config.sizes.deepal_epochs=1 --config.sections=

Prints one JSON object on stdout (progress goes to stderr) with the sections

* ``machine``: versions, backend, devices, CPU count and the measured float32 matmul GFLOP/s;
* ``scores``: EL2N and GraNd throughput of LeNet-5 and ResNet-18 (CIFAR stem);
* ``fit``: seconds per epoch of ``jal.fit`` (compile excluded);
* ``al_round``: one compile-free AL round (LeNet + Margin on MNIST) split into train / score /
  select;
* ``fit_many``: models/s of ``jal.fit_many`` for several ``K`` against sequential ``jal.fit``;
* ``deepal_protocol`` (``config.protocol=deepal`` only): the DeepAL+ MNIST / ResNet-18 protocol
  of ``experiments/configs/deepal_mnist_resnet.py``, run through ``experiments.build`` and
  ``jal.run_loop``.

``--config`` is a config of the ``"bench"`` family (default ``bench``). Sizes default to a few
minutes on a small CPU and to larger problems on an accelerator; every size is a field of
``config.sizes``. On CPU, ResNet-18 GraNd (per-example gradients of a ``vmap``ped convnet run
at about 1 example/s on two cores) and ``fit_many`` (``vmap`` over models is slower than a loop
there) default to small sizes: N = 16 and K = 1, 4. MNIST is looked for in ``--data_dir``,
``$JAL_DATA_DIR`` and ``../shared/data``; without it the sections run on synthetic data.

Jittable work is compiled ahead of time (``jit(...).lower(...).compile()``), so compile seconds
are measured on their own, then run once untimed (``warmup``) and timed; ``jal.fit`` (a Python
loop over a compiled epoch) is called once to compile and then timed (``bench/timing.py``).
"""

import contextlib
import json
import pathlib
import sys

from absl import flags

from experiments import runtime
from experiments.bench import settings, suite, timing

_CONFIG = runtime.define_config("bench", default="bench")
_OUT = flags.DEFINE_string("out", None, "Also write the JSON to this file.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR, "
                                "then ../shared/data); synthetic data if MNIST is absent.")


def _main():
  config = _CONFIG.value
  if config.protocol not in ("none", "deepal"):
    raise ValueError(f"config.protocol must be 'none' or 'deepal', got {config.protocol!r}")
  stdout = sys.stdout
  with contextlib.redirect_stdout(sys.stderr):  # Library prints must not corrupt the JSON.
    result = suite.run_benchmark(settings.parse_sections(config.sections),
                                 settings.settings_from_config(config.sizes),
                                 protocol=config.protocol, data_dir=_DATA_DIR.value)
  text = json.dumps(result, indent=1, allow_nan=False)
  if _OUT.value:
    path = pathlib.Path(_OUT.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    timing.log(f"wrote {path}")
  print(text, file=stdout, flush=True)


def run():
  """Runs the benchmark binary (``python -m experiments.bench``)."""
  runtime.run(_main, "bench", _CONFIG)


if __name__ == "__main__":
  run()
