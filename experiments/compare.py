r"""Runs several strategies × seeds of one protocol and writes a comparison table.

  python -m experiments.compare --workdir=/tmp/jal_compare
  python -m experiments.compare --config=mnist_lenet --data_dir=../shared/data \
      --strategies=random,margin,entropy,coreset,badge --seeds=0,1,2 --workdir=runs/mnist

Each (strategy, seed) runs in ``workdir/<strategy>/seed<k>`` with ``--config.strategy.name``
and ``--config.seed`` replaced (so an interrupted comparison resumes); the aggregate goes to
``workdir/summary.json``, ``workdir/table.md``, ``workdir/penalty.md`` (the penalty
matrices and the paired AUBC and F-acc differences), ``workdir/picks.md`` (each class's
share of the labels bought) and ``workdir/curve.png``; ``--include``
adds the rows of earlier summaries, and ``--isolate`` runs each (strategy, seed) in its own process.
The default config (``default``: digits / MLP) with Random and Margin over 2 seeds takes about
a minute on 2 CPU cores.
"""

import json
import pathlib
import subprocess
import sys

from absl import flags

import jal
from experiments import runs, runtime, tables

_CONFIG = runtime.define_config("compare", default="default")
_STRATEGIES = flags.DEFINE_list("strategies", ["random", "margin"], "Strategies to compare.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Seeds.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_compare", "Output directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).")
_ISOLATE = flags.DEFINE_bool("isolate", False, "Run each (strategy, seed) in its own "
                             "`experiments.al` process: its peak memory is its own (the table's "
                             "peak MiB) and one failed run does not stop the others.")
_INCLUDE = flags.DEFINE_list("include", [], "summary.json files of earlier comparisons on the "
                             "same protocol and seeds: their rows join the table and the "
                             "penalty matrices (rows of --workdir win on a name clash).")
_COLLECT = flags.DEFINE_bool("collect_only", False, "Only aggregate the finished runs in "
                             "--workdir (no training).")


def _write(root: pathlib.Path, summary: dict) -> tuple[str, dict]:
  """Writes the report of ``summary`` and the ``--include`` rows under ``root``
  (``tables.write_report``); returns the table and the joined summary."""
  for rows in _included():
    summary = {**{n: s for n, s in rows.items() if n not in summary}, **summary}
  table = tables.write_report(root, summary, title=flags.FLAGS["config"].config_filename)
  return table, summary


def _included() -> list[dict]:
  """The summaries named by ``--include``."""
  out = []
  for path in _INCLUDE.value:
    try:
      rows = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
      raise ValueError(f"--include: cannot read {path} ({type(e).__name__}: {e})") from None
    if not (isinstance(rows, dict) and all(isinstance(r, dict) and "acc" in r
                                           for r in rows.values())):
      raise ValueError(f"--include: {path} is not a compare summary.json")
    out.append(rows)
  return out


def _check_flags() -> list[int]:
  """The seeds; every strategy name and seed checked before any run starts."""
  if not _STRATEGIES.value:
    raise ValueError("--strategies is empty; name at least one (e.g. --strategies=random)")
  unknown = [n for n in _STRATEGIES.value if n not in jal.STRATEGIES]
  if unknown:
    raise ValueError(f"--strategies: unknown {unknown}; choose from {sorted(jal.STRATEGIES)}")
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError:
    raise ValueError(f"--seeds must be integers, got {_SEEDS.value}") from None
  if not seeds:
    raise ValueError("--seeds is empty; give at least one (e.g. --seeds=0,1,2)")
  _included()  # unreadable --include files fail now, not after the runs
  return seeds


def _config_args(argv: list[str]) -> list[str]:
  """The ``--config`` / ``--config.<key>`` arguments of ``argv`` (for a child ``al``)."""
  out, i = [], 1
  while i < len(argv):
    arg = argv[i]
    if arg.lstrip("-").startswith("config"):
      out.append(arg)
      if "=" not in arg and i + 1 < len(argv):  # "--config NAME"
        out.append(argv[i + 1])
        i += 1
    i += 1
  return out


def _run_isolated(name: str, seed: int, workdir: pathlib.Path) -> dict | None:
  """Runs one (strategy, seed) as ``python -m experiments.al``; its history, or ``None``."""
  cmd = [sys.executable, "-m", "experiments.al", *_config_args(sys.argv),
         f"--config.strategy.name={name}", f"--config.seed={seed}", f"--workdir={workdir}"]
  if _DATA_DIR.value:
    cmd.append(f"--data_dir={_DATA_DIR.value}")
  if subprocess.run(cmd, check=False).returncode != 0:
    return None
  return json.loads((workdir / "history.json").read_text())


def _main():
  seeds = _check_flags()
  root = pathlib.Path(_WORKDIR.value)
  if _COLLECT.value:
    results = tables.load_finished(_WORKDIR.value, _STRATEGIES.value, seeds)
    if not results:
      raise ValueError(f"no finished runs under {_WORKDIR.value}")
    print(_write(root, tables.aggregate(results))[0], flush=True)
    return
  base = _CONFIG.value
  results, failed = {}, []
  for name in _STRATEGIES.value:
    for seed in seeds:
      print(f"== {name} seed {seed}", flush=True)
      workdir = root / name / f"seed{seed}"
      if _ISOLATE.value:
        history = _run_isolated(name, seed, workdir)
        if history is None:
          failed.append(f"{name}/seed{seed}")
          continue
      else:
        config = base.copy_and_resolve_references()
        config.strategy.name, config.seed = name, seed
        history = runs.run_al(config, str(workdir), _DATA_DIR.value)
      results.setdefault(name, []).append(history)
  # A failed isolated run has printed its own error; the summary line ends the program.
  if not results:
    sys.exit(f"error: every run failed (see their output above): {', '.join(failed)}")
  table, _ = _write(root, tables.aggregate(results))
  print(table, flush=True)
  if failed:
    sys.exit(f"error: {len(failed)} run(s) failed (see their output above), left out of "
             f"the table: {', '.join(failed)}")


if __name__ == "__main__":
  runtime.run(_main, "compare", _CONFIG)
