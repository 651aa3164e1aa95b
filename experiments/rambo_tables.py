r"""RAMBO's one-round tables: RAMBO / Random / Margin / DULO and the 8 ablation rows, over trials.

  python -m experiments.rambo_tables --seeds=0,1,2 --workdir=/tmp/rambo_tables_digits
  python -m experiments.rambo_tables --config=rambo_mnist --data_dir=/work/shared/data \
      --seeds=0,1,2 --workdir=/tmp/rambo_tables_mnist [--ablations]

Per trial seed, S₀ and the offline utility samples are drawn once (``prepare_offline``) and
shared by RAMBO, every ablation row and DULO; Random and Margin start from the same S₀. Results
are appended to ``workdir/results.json`` after every run (a rerun skips finished runs) and
``workdir/table.md`` holds mean ± standard error of validation and test accuracy. ``--config``
is a config of the ``"one_round"`` family (default ``rambo_digits``); its ``data.pool`` (R8)
settings are drawn per trial seed.
"""

import dataclasses
import json
import os
import pathlib
import time

import jax
from absl import flags

from experiments import build, runtime
from experiments.tables import ablation_name, markdown, summarize
from jal.rambo import (
  ABLATIONS,
  prepare_offline,
  run_baseline,
  run_dulo,
  run_null,
  run_rambo,
  trial_s0,
)

_CONFIG = runtime.define_config("rambo_tables", default="rambo_digits")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_rambo_tables", "Output directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Trial seeds.")
_STRATS = flags.DEFINE_list("strategies", ["rambo", "random", "margin", "dulo"],
                            "Strategies of the main table.")
_ABL = flags.DEFINE_bool("ablations", False, "Also run the 7 other ablation rows.")


_COMPILES = {"n": 0, "seconds": 0.0}


def _count_compile(event: str, duration: float, **kwargs) -> None:
  if event == "/jax/core/compile/backend_compile_duration":
    _COMPILES["n"] += 1
    _COMPILES["seconds"] += duration


def _main():
  config = _CONFIG.value
  cfg, tc = build.rambo_config(config), build.train_config(config)
  clean = build.load_data(config, _DATA_DIR.value)
  net = build.net(config, clean)
  out = pathlib.Path(_WORKDIR.value)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "results.json"
  results = json.loads(path.read_text())["runs"] if path.exists() else []
  done = {(r["seed"], r["name"]) for r in results}
  rows = [(True, True, True)] + ([a for a in ABLATIONS if a != (True, True, True)]
                                 if _ABL.value else [])

  jax.monitoring.register_event_duration_secs_listener(_count_compile)

  def record(seed, name, res, t):
    res = {k: v for k, v in res.items() if k in ("val_accuracy", "test_accuracy", "timings",
                                                  "refinement_accuracies", "labeled")}
    results.append({"seed": seed, "name": name, **res, "seconds": time.perf_counter() - t,
                    "loadavg": list(os.getloadavg()), "compiles_so_far": dict(_COMPILES)})
    summary = summarize(results)
    path.write_text(json.dumps({"settings": {"config": config.to_dict(),
                                             "rambo": dataclasses.asdict(cfg)},
                                "runs": results, "summary": summary}, indent=1, default=str))
    (out / "table.md").write_text(markdown(summary))
    print(f"seed {seed} {name}: val {res['val_accuracy']:.4f} test {res['test_accuracy']:.4f} "
          f"({time.perf_counter() - t:.0f}s, load {os.getloadavg()[0]:.1f})", flush=True)

  for seed in (int(s) for s in _SEEDS.value):
    key = jax.random.key(seed)
    data = build.apply_pool_settings(config, clean, seed)  # R8 noise/imbalance of this trial
    offline = None
    for strat in _STRATS.value:
      if strat == "rambo":
        todo = [(ablation_name(*a) if a != (True, True, True) else "rambo", a) for a in rows]
      else:
        todo = [(strat, None)]
      for name, abl in todo:
        if (seed, name) in done:
          continue
        t = time.perf_counter()
        if strat in ("rambo", "dulo") and offline is None:
          offline = prepare_offline(key, data, net, tc, cfg)
          print(f"seed {seed} offline samples: {offline.timings}", flush=True)
          t = time.perf_counter() - sum(offline.timings.values())  # charge them to this run
        if strat == "rambo":
          b, o, r = abl
          u = dataclasses.replace(cfg.utility, bilevel=b, lam_ot=1.0 if o else 0.0, ranknet=r)
          res = run_rambo(key, data, net, tc, dataclasses.replace(cfg, utility=u),
                          offline=offline)
        elif strat == "dulo":
          res = run_dulo(key, data, net, tc, cfg, offline=offline)
        elif strat == "null":
          res = run_null(key, data, net, tc, cfg)
        else:
          s0 = offline.s0 if offline is not None else trial_s0(key, data, cfg.k)
          res = run_baseline(key, data, net, tc, strat, cfg.k, cfg.budget, s0=s0)
        record(seed, name, res, t)


if __name__ == "__main__":
  runtime.run(_main, "rambo_tables", _CONFIG)
