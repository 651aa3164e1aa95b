r"""RAMBO's one-round tables: RAMBO / Random / Margin / DULO and the 8 ablation rows, over trials.

  python -m experiments.rambo_tables --seeds=0,1,2 --workdir=/tmp/rambo_tables_digits
  python -m experiments.rambo_tables --config=rambo_mnist --data_dir=/work/shared/data \
      --seeds=0,1,2 --workdir=/tmp/rambo_tables_mnist [--ablations]

Per trial seed, S₀ and the offline utility samples are drawn once (``prepare_offline``) and
shared by RAMBO, every ablation row and DULO; Random and Margin start from the same S₀. Results
are appended to ``workdir/results.json`` after every run, written atomically (a kill leaves the
previous file whole), each run keyed by (seed, row, settings fingerprint): a rerun skips the
finished runs of the same settings, and runs of other settings stay in the file but out of
the table. ``workdir/table.md`` holds mean ± standard error of validation and test
accuracy. ``--config`` is a config of the ``"one_round"`` family (default
``rambo_digits``); its ``data.pool`` (R8) settings are drawn per trial seed.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import time

import jax
from absl import flags

from experiments import build, runtime
from experiments.tables import ablation_name, markdown, summarize
from jal.files import atomic_write
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


def fingerprint(config, cfg) -> str:
  """What decides a trial's result besides its seed and row: every config field but
  ``seed`` / ``strategy`` (rambo_tables takes both from its flags) and the RAMBO settings."""
  c = {k: v for k, v in config.to_dict().items() if k not in ("seed", "strategy")}
  blob = json.dumps({"config": c, "rambo": dataclasses.asdict(cfg)}, sort_keys=True,
                    default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_runs(path: pathlib.Path, fp: str, rambo: dict) -> list[dict]:
  """The runs of ``path`` (``[]`` if absent). Runs written before fingerprints were recorded
  get ``fp`` when the file's RAMBO settings equal ``rambo`` (else ``"unknown"``).

  Raises:
    ValueError: naming the file when it is not a results file (truncated, hand-edited).
  """
  if not path.exists():
    return []
  try:
    saved = json.loads(path.read_text())
    runs = saved["runs"]
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{path} is not a readable results file ({type(e).__name__}: {e}); "
                     "move it away to start the table afresh") from None
  legacy = fp if saved.get("settings", {}).get("rambo") == rambo else "unknown"
  for r in runs:
    r.setdefault("fingerprint", legacy)
  return runs


def _main():
  config = _CONFIG.value
  cfg, tc = build.rambo_config(config), build.train_config(config)
  fp = fingerprint(config, cfg)
  out = pathlib.Path(_WORKDIR.value)
  path = out / "results.json"
  results = load_runs(path, fp, json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))
  clean = build.load_data(config, _DATA_DIR.value)
  net = build.net(config, clean)
  out.mkdir(parents=True, exist_ok=True)
  done = {(r["seed"], r["name"]) for r in results if r["fingerprint"] == fp}
  others = sum(r["fingerprint"] != fp for r in results)
  if others:
    print(f"{path}: {others} run(s) of other settings are kept there but left out of the "
          "table", flush=True)
  rows = [(True, True, True)] + ([a for a in ABLATIONS if a != (True, True, True)]
                                 if _ABL.value else [])

  jax.monitoring.register_event_duration_secs_listener(_count_compile)

  def record(seed, name, res, t):
    res = {k: v for k, v in res.items() if k in ("val_accuracy", "test_accuracy", "timings",
                                                  "refinement_accuracies", "labeled")}
    results.append({"seed": seed, "name": name, **res, "seconds": time.perf_counter() - t,
                    "loadavg": list(os.getloadavg()), "compiles_so_far": dict(_COMPILES),
                    "fingerprint": fp})
    summary = summarize([r for r in results if r["fingerprint"] == fp])
    atomic_write(path, json.dumps({"settings": {"config": config.to_dict(),
                                                "rambo": dataclasses.asdict(cfg)},
                                   "fingerprint": fp, "runs": results, "summary": summary},
                                  indent=1, default=str))
    atomic_write(out / "table.md", markdown(summary))
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
