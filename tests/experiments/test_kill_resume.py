"""SIGKILL at random instants, then rerun: the result equals an uninterrupted run (issue 15, 1).

Each binary runs once uninterrupted (the reference), then for several seeded random delays a
run is started in a fresh workdir, killed with SIGKILL after the delay (during start-up,
training, scoring, selection or the writes: the delays cover the whole run), and rerun until it
finishes (the rerun may itself be killed once). The finished result must equal the reference:
the same rounds, queried indices and accuracies (``al``, ``compare``), the same trial rows
(``rambo_tables``); and where a checkpoint was left, the rerun must say it resumed (a loop that
always restarted from round 0 would give the same result and pass otherwise). The
compilation cache is off so that every process compiles alike.
Slow suite (~2 min each binary).
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

_REPO = pathlib.Path(__file__).resolve().parents[2]
KILLS = 6


def _cmd(binary, args, workdir):
  return [sys.executable, "-m", f"experiments.{binary}", *args, f"--workdir={workdir}",
          "--compilation_cache="]


def _env():
  return {**os.environ, "PYTHONPATH": str(_REPO)}


def _finish(cmd, cwd):
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=_env())
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def _killed_at(cmd, cwd, delay):
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
                          env=_env())
  try:
    proc.wait(timeout=delay)
  except subprocess.TimeoutExpired:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _al_result(work):
  h = json.loads((work / "history.json").read_text())
  return [(r["round"], r["n_labeled"], r["queried"], r["test_accuracy"]) for r in h["rounds"]], \
      h["aubc"]


def _compare_result(work):
  s = json.loads((work / "summary.json").read_text())
  return {n: (v["acc"], v["aubc"][0]) for n, v in s.items()}


def _tables_result(work):
  runs = json.loads((work / "results.json").read_text())["runs"]
  return sorted((r["seed"], r["name"], r["labeled"], r["val_accuracy"], r["test_accuracy"])
                for r in runs)


@pytest.mark.parametrize("binary, args, result", [
    ("al", ["--config=smoke", "--config.loop.rounds=3"], _al_result),
    ("compare", ["--config=smoke", "--config.loop.rounds=2", "--strategies=random,margin",
                 "--seeds=0,1"], _compare_result),
    ("rambo_tables", ["--config=rambo_smoke", "--strategies=random,margin", "--seeds=0,1"],
     _tables_result),
])
def test_killed_and_rerun_equals_uninterrupted(tmp_path, binary, args, result):
  t0 = time.perf_counter()
  _finish(_cmd(binary, args, tmp_path / "reference"), tmp_path)
  span = time.perf_counter() - t0
  want = result(tmp_path / "reference")
  rng = np.random.default_rng(0)
  for i, delay in enumerate(rng.uniform(0.3, 1.0, KILLS) * span):
    work = tmp_path / f"killed{i}"
    _killed_at(_cmd(binary, args, work), tmp_path, delay)
    if i % 2:  # and once more during the rerun
      _killed_at(_cmd(binary, args, work), tmp_path, rng.uniform(0.2, 0.8) * span)
    checkpoints = list(work.rglob("checkpoint.npz"))
    stdout = _finish(_cmd(binary, args, work), tmp_path)
    assert result(work) == want, f"killed after {delay:.1f} s of {span:.1f} s"
    if checkpoints and binary != "rambo_tables":  # it resumed, not restarted from round 0
      assert "resuming" in stdout, f"killed after {delay:.1f} s: a checkpoint was not resumed"
