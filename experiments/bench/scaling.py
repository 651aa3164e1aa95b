r"""Scaling benchmark: device scaling (1/2/4/8 devices) and pool-size scaling (10k/100k/1M).

  python -m experiments.bench.scaling --out=/tmp/jal_scaling.json
  python -m experiments.bench.scaling --config.part=pool --config.methods="('margin',)"

* ``devices``: in one fresh process per device count (fake CPU devices via
  ``jax_num_cpu_devices``; they share the host's cores, so no speed-up is expected on CPU),
  the throughput of sharded scoring (``jal.predict(..., mesh=...)``) and of
  ``jal.fit(..., mesh=...)``.
* ``pool``: in one fresh process per (method, pool size), on synthetic embeddings, the
  selection time (second call, compiled) and memory: the CPU backend has no
  ``memory_stats``, so the process's peak RSS (``ru_maxrss``) and the selection's own working
  set (``VmHWM`` reset through ``/proc/self/clear_refs`` before the timed call, minus
  ``VmRSS`` before it) of Margin's top-k, CoreSet's greedy k-center,
  BADGE's factored k-means++ and BRAL-T's selection step (``jal.bralt.select.select_batch``
  with a fresh reward net), plus the log-log slope of time and of memory against ``n``.

``--config`` is a config of the ``"scaling"`` family (default ``scaling``); times go through
``experiments.bench.timing``.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import flags

from experiments import runtime
from experiments.bench import memory, timing

_CONFIG = runtime.define_config("bench.scaling", default="scaling")
_OUT = flags.DEFINE_string("out", "/tmp/jal_scaling.json", "Where the JSON report goes.")

K = 10  # classes of the synthetic logits








def _timed(fn, reps=3):
  """Best of ``reps`` compile-free calls (after a first, compiling one)."""
  return timing.time_call(fn, repeats=reps)["seconds"]


def device_worker(d: int) -> dict:
  """Scoring and fit throughput on a ``d``-device mesh (this process owns ``d`` devices)."""
  import jax
  jax.config.update("jax_num_cpu_devices", d)
  import jax.numpy as jnp

  import jal
  from jal import parallel
  mesh = parallel.make_mesh(d)
  n, n_lab = 16384, 2048
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n, 8, 8, 1)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, K, n).astype(np.int32))
  mask = jnp.asarray(np.arange(n) < n_lab)
  net = jal.make_net("mlp", (8, 8, 1), K, hidden=(128, 128))
  v = parallel.replicate(net.init(jax.random.key(0)), mesh)
  xs = parallel.shard_rows(x, mesh)
  score_s = _timed(lambda: jal.predict(net, v, xs, 512, mesh=mesh))
  cfg = jal.TrainConfig(epochs=2, batch_size=128)
  fit = lambda: jal.fit(jax.random.key(1), net, cfg, x, y, mask, mesh=mesh).variables
  fit_s = _timed(fit, reps=1)
  return {"devices": d, "score_rows_per_s": n / score_s, "score_seconds": score_s,
          "fit_examples_per_s": cfg.epochs * n_lab / fit_s, "fit_seconds": fit_s,
          "pool": n, "labeled": n_lab, "batch_size": cfg.batch_size}


def pool_worker(method: str, n: int, budget: int, n_lab: int, dim: int, chunk: int) -> dict:
  """Selection time and peak RSS of one method on a synthetic pool of ``n`` rows."""
  import jax
  import jax.numpy as jnp

  import jal
  from jal import cluster
  rng = np.random.default_rng(0)
  # Drawn on the device in float32, so the RSS high-water mark after this line is the inputs.
  emb = jax.random.normal(jax.random.key(10), (n, dim))
  logits = jax.random.normal(jax.random.key(11), (n, K))
  labeled_np = np.zeros(n, bool)
  labeled_np[rng.choice(n, n_lab, replace=False)] = True
  labeled = jnp.asarray(labeled_np)
  jax.block_until_ready((emb, logits, labeled))
  rss_inputs = memory.peak_rss_mib()
  inputs_mib = (emb.nbytes + logits.nbytes + labeled.nbytes) / 2**20
  # The strategies' public picks on one device (a Context carrying only the labeled mask).
  ctx = jal.Context(None, None, None, None, labeled, K, chunk, None)
  if method == "margin":
    fn = lambda: jal.get_strategy("margin").pick(jax.random.key(0), ctx, logits, budget)
  elif method == "coreset":
    fn = lambda: cluster.kcenter_greedy(emb, budget, labeled, chunk_size=chunk)
  elif method == "badge":
    fn = lambda: jal.get_strategy("badge").pick(jax.random.key(0), ctx, (logits, emb), budget)
  elif method == "bralt":
    from jal.bralt import env as env_lib
    from jal.bralt import reward_net as rn
    from jal.bralt import select as sel
    # The reduced Fashion-MNIST protocol's settings (bralt_fmnist_reduced).
    cfg = env_lib.EnvConfig(n_label_clusters=10, n_state_clusters=10, max_points=256,
                            rel_epsilon=1e-2, ot_momentum=1.5)
    caps = env_lib.Caps(env_lib.cloud_cap(cfg, n_lab, cfg.n_label_clusters),
                        env_lib.cloud_cap(cfg, n - n_lab, cfg.n_state_clusters), 1, 1, 1)
    model = rn.init_reward_model(jax.random.key(1), 4 * dim, 2 * dim)
    fn = lambda: sel.select_batch(jax.random.key(0), model, emb, labeled, cfg, caps,
                                  budget)[0]
  else:
    raise ValueError(method)
  jax.block_until_ready(fn())  # compile + warm up
  # The selection's own working set: peak RSS during one compiled call over the RSS before.
  base = memory.status_mib("VmRSS")
  reset = memory.reset_peak()
  seconds = timing.seconds(fn)
  return {"method": method, "n": n, "seconds": seconds, "peak_rss_mib": memory.peak_rss_mib(),
          "rss_after_inputs_mib": rss_inputs, "inputs_mib": inputs_mib,
          "select_extra_mib": memory.status_mib("VmHWM") - base if reset else None,
          "budget": budget, "n_labeled": n_lab, "dim": dim}


def _spawn(args, timeout):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  t0 = time.perf_counter()
  try:
    proc = subprocess.run([sys.executable, "-m", "experiments.bench.scaling", "--worker", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
  except subprocess.TimeoutExpired:
    return {"error": f"timeout after {timeout}s", "args": args}
  lines = [l for l in proc.stdout.splitlines() if l.startswith("JSON")]
  if proc.returncode or not lines:
    return {"error": proc.stderr[-1500:], "args": args}
  out = json.loads(lines[-1][4:])
  out["process_seconds"] = time.perf_counter() - t0
  return out


def slope(xs, ys) -> float:
  """Least-squares slope of ``log y`` against ``log x`` (the scaling exponent)."""
  return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def _main():
  c = _CONFIG.value
  if c.part not in ("all", "devices", "pool"):
    raise ValueError(f"config.part must be all, devices or pool, got {c.part!r}")
  report = {"devices": [], "pool": [], "exponents": {}}
  if c.part in ("all", "devices"):
    for d in c.devices:
      r = _spawn(["devices", str(d)], c.timeout)
      report["devices"].append(r)
      print(json.dumps(r), flush=True)
  if c.part in ("all", "pool"):
    for m in c.methods:
      rows = []
      for n in c.pool_sizes:
        r = _spawn(["pool", m, str(n), str(c.budget), str(c.n_labeled), str(c.dim),
                    str(c.chunk_size)], c.timeout)
        rows.append(r)
        print(json.dumps(r), flush=True)
      report["pool"] += rows
      ok = [r for r in rows if "error" not in r]
      if len(ok) >= 2:
        ns = [r["n"] for r in ok]
        report["exponents"][m] = {
            "time": slope(ns, [r["seconds"] for r in ok]),
            "peak_rss": slope(ns, [r["peak_rss_mib"] for r in ok]),
            "select_extra": slope(ns, [max(r["select_extra_mib"] or 0.0, 1.0) for r in ok]),
            "sizes": ns}
  with open(_OUT.value, "w") as f:
    json.dump(report, f, indent=1)
  print(json.dumps(report["exponents"], indent=1))
  print(f"-> {_OUT.value}")


def _worker(argv):
  kind = argv[0]
  if kind == "devices":
    out = device_worker(int(argv[1]))
  else:
    out = pool_worker(argv[1], *map(int, argv[2:]))
  print("JSON" + json.dumps(out), flush=True)


if __name__ == "__main__":
  if len(sys.argv) > 1 and sys.argv[1] == "--worker":
    _worker(sys.argv[2:])
  else:
    runtime.run(_main, "bench.scaling", _CONFIG)
