r"""Cost of one selection of the issue-14 baselines on a full-size synthetic pool.

  python -m experiments.bench.baselines --out=/tmp/jal_baselines.json
  python -m experiments.bench.baselines --strategies=bait --dims=84 --n=60000

For every (strategy, embedding width) a fresh process builds a synthetic pool of ``--n``
28×28×1 images (N(0, 1), uniform labels; the costs do not depend on pixel values), a
random-init target net — LeNet-5 for ``D = 84``, an MLP with one hidden layer of ``D`` units as
the stand-in for ``D = 512`` (ResNet-18's width; a ResNet pass over 60k images is not what is
measured here) — ``--labeled`` labeled rows and runs ``jal.select_timed`` once (compiling) and,
when that took under ``--second_below`` seconds, once more (compiled). Reported: the seconds of
each call (score / select halves), the process's peak RSS (``ru_maxrss``), the RSS before the
first selection and the selection's own working set (``VmHWM`` reset through
``/proc/self/clear_refs`` before it, minus ``VmRSS`` then). A process that runs past
``--timeout`` seconds is stopped and reported as such (estimate from the narrower width).
Cluster-Margin's state (its clustering) is computed inside the measured call.
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags

from experiments.bench import memory

_STRATEGIES = flags.DEFINE_list("strategies", ["cluster_margin", "bait", "saal", "activeft"],
                                "Strategies to measure.")
_DIMS = flags.DEFINE_list("dims", ["84", "512"], "Embedding widths (84: LeNet-5, else an MLP).")
_N = flags.DEFINE_integer("n", 60000, "Pool size.")
_LABELED = flags.DEFINE_integer("labeled", 100, "Labeled rows.")
_BUDGET = flags.DEFINE_integer("budget", 100, "Query size B.")
_TIMEOUT = flags.DEFINE_integer("timeout", 180, "Seconds per (strategy, width) process.")
_SECOND = flags.DEFINE_float("second_below", 60.0, "Time a second (compiled) call when the "
                             "first took less than this many seconds.")
_OUT = flags.DEFINE_string("out", "/tmp/jal_baselines.json", "Where the JSON report goes.")
_CHILD = flags.DEFINE_string("child", None, "Internal: measure one 'strategy:dim' and print.")






def measure(strategy: str, dim: int, n: int, labeled: int, budget: int,
            second_below: float) -> dict:
  """One (strategy, width) measurement in this process (see the module docstring)."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  import jal

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, 28, 28, 1), dtype=np.float32))
  y = jnp.asarray(rng.integers(0, 10, n).astype(np.int32))
  if dim == 84:
    net = jal.make_net("lenet", (28, 28, 1), 10)
  else:
    net = jal.make_net("mlp", (28, 28, 1), 10, hidden=(dim,))
  mask = np.zeros(n, bool)
  mask[rng.choice(n, labeled, replace=False)] = True
  variables = net.init(jax.random.key(0))
  ctx = jal.Context(net, variables, x, y, jnp.asarray(mask), 10)
  s = jal.get_strategy(strategy)
  out = {"strategy": strategy, "embed_dim": net.embed_dim, "model": net.name, "n": n,
         "labeled": labeled, "budget": budget, "device": jax.default_backend()}
  out["rss_before_mib"] = memory.status_mib("VmRSS")
  reset = memory.reset_peak()
  calls = []
  for i in range(2):
    t0 = time.perf_counter()
    c = ctx
    if s.state is not None:
      c = ctx._replace(state=s.state(jax.random.key(10 + i), ctx, None))
    idx, info, secs = jal.select_timed(s, jax.random.key(i), c, budget)
    calls.append({"seconds": time.perf_counter() - t0, **secs,
                  "info": {k: v for k, v in info.items() if isinstance(v, (int, float))}})
    if i == 0:
      out["selection_peak_mib"] = (memory.status_mib("VmHWM") - out["rss_before_mib"]) if reset \
          else None
    assert len(set(np.asarray(idx).tolist())) == budget
    if calls[-1]["seconds"] >= second_below:
      break
  out["calls"] = calls
  out["peak_rss_mib"] = memory.peak_rss_mib()
  return out


def _run_child(spec: str, timeout: int) -> dict:
  cmd = [sys.executable, "-m", "experiments.bench.baselines", f"--child={spec}",
         f"--n={_N.value}", f"--labeled={_LABELED.value}", f"--budget={_BUDGET.value}",
         f"--second_below={_SECOND.value}"]
  t0 = time.perf_counter()
  try:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ)
  except subprocess.TimeoutExpired:
    return {"spec": spec, "timed_out_after_seconds": timeout}
  if p.returncode != 0:
    return {"spec": spec, "error": p.stderr[-2000:]}
  res = json.loads(p.stdout.strip().splitlines()[-1])
  res["process_seconds"] = time.perf_counter() - t0
  return res


def _main(argv):
  del argv
  if _CHILD.value:
    name, dim = _CHILD.value.split(":")
    print(json.dumps(measure(name, int(dim), _N.value, _LABELED.value, _BUDGET.value,
                             _SECOND.value)))
    return
  results = []
  for name in _STRATEGIES.value:
    for dim in _DIMS.value:
      res = _run_child(f"{name}:{dim}", _TIMEOUT.value)
      print(json.dumps(res), flush=True)
      results.append(res)
  report = {"loadavg": list(os.getloadavg()), "results": results}
  with open(_OUT.value, "w") as f:
    json.dump(report, f, indent=1)


if __name__ == "__main__":
  app.run(_main)
