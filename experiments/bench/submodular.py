r"""Seconds and memory of one GLISTER / SIMILAR selection on a synthetic full-size pool.

  python -m experiments.bench.submodular --out=/tmp/jal_submodular.json
  python -m experiments.bench.submodular --strategies=similar:flvmi --n=60000 --budget=100

Each strategy runs in a fresh process: a random-init LeNet-5 (D = 84, K = 10) over ``--n``
synthetic 28×28×1 images (``--labeled`` labeled rows, ``--n_val`` validation rows for
GLISTER), one compiling ``select`` and then one timed ``select``. Reported: score / pick
seconds of both calls, the process's peak RSS (``ru_maxrss``) and the timed selection's own
working set (``VmHWM`` reset through ``/proc/self/clear_refs`` before it, minus ``VmRSS``
before it), as ``experiments.bench.scaling`` measures pool-size scaling. A strategy is named
``glister``, ``similar`` (FLQMI) or ``similar:flvmi``.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import jal
from experiments.bench import memory, timing

_STRATEGIES = flags.DEFINE_list("strategies", ["glister", "similar", "similar:flvmi"],
                                "Strategies to measure, one process each.")
_N = flags.DEFINE_integer("n", 60000, "Pool size.")
_BUDGET = flags.DEFINE_integer("budget", 100, "Query size B.")
_LABELED = flags.DEFINE_integer("labeled", 100, "Labeled rows (|L|).")
_N_VAL = flags.DEFINE_integer("n_val", 1000, "Validation rows (GLISTER's V).")
_ONE = flags.DEFINE_string("one", None, "Internal: measure this strategy in this process.")
_OUT = flags.DEFINE_string("out", "/tmp/jal_submodular.json", "Where the JSON report goes.")




def _strategy(name: str) -> jal.Strategy:
  base, _, function = name.partition(":")
  return jal.get_strategy(base, **({"function": function} if function else {}))


def _measure(name: str) -> dict:
  n, k = _N.value, 10
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, 28, 28, 1), np.float32))
  y = jnp.asarray(rng.integers(0, k, n).astype(np.int32))
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, _LABELED.value, replace=False)] = True
  net = jal.make_net("lenet", (28, 28, 1), k)
  ctx = jal.Context(net, net.init(jax.random.key(0)), x, y, jnp.asarray(labeled), k,
                    chunk_size=1024,
                    x_val=jnp.asarray(rng.standard_normal((_N_VAL.value, 28, 28, 1),
                                                          np.float32)),
                    y_val=jnp.asarray(rng.integers(0, k, _N_VAL.value).astype(np.int32)))
  strategy = _strategy(name)
  _, info, first = jal.select_timed(strategy, jax.random.key(1), ctx, _BUDGET.value)
  with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
    f.write("5")
  before = memory.status_mib("VmRSS")
  _, _, second = jal.select_timed(strategy, jax.random.key(2), ctx, _BUDGET.value)
  return {"strategy": name, "n": n, "budget": _BUDGET.value, "labeled": _LABELED.value,
          "embed_dim": net.embed_dim, "first_call_seconds": first, "seconds": second,
          "selection_working_set_mib": memory.status_mib("VmHWM") - before,
          "peak_rss_mib": memory.peak_rss_mib(),
          "info": info, "backend": jax.default_backend(), "loadavg": timing.loadavg()}


def main(argv):
  del argv
  if _ONE.value:
    print(json.dumps(_measure(_ONE.value)), flush=True)
    return
  out = []
  for name in _STRATEGIES.value:
    timing.log(f"{name} on n = {_N.value}")
    cmd = [sys.executable, "-m", "experiments.bench.submodular", f"--one={name}",
           f"--n={_N.value}", f"--budget={_BUDGET.value}", f"--labeled={_LABELED.value}",
           f"--n_val={_N_VAL.value}"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if res.returncode:
      out.append({"strategy": name, "error": res.stderr.strip().splitlines()[-1:]})
    else:
      out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    timing.log(json.dumps(out[-1]))
  with open(_OUT.value, "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  app.run(main)
