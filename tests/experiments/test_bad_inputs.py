"""Bad inputs against the binaries: one ``error:`` line, a non-zero exit, nothing lost (issue 15).

Each case runs a binary in a subprocess on the small digits configs (``smoke``, ``rambo_smoke``,
``bralt_digits``) with one bad setting, flag, file or workdir and asserts that the last stderr
line is ``error: …`` naming the input, that no traceback was printed, that the exit status is
not 0, and that nothing was written or lost: a fresh ``--workdir`` is not even created (every
setting is checked before any work), and a workdir holding a finished run keeps every byte of
its files. Fault injection: flags and ``--config.<key>`` overrides, a file where the workdir
should be, truncated / overwritten result files, a workdir locked by this process, a workdir of
another run. A few representative cases run in the default suite, the whole table (≥ 40 cases,
~4 s each) in the slow one.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from jal.loop import workdir_lock

_REPO = pathlib.Path(__file__).resolve().parents[2]
S, R, B = "--config=smoke", "--config=rambo_smoke", "--config=bralt_digits"

# (binary, arguments, what the error line must contain). "{file}" is a plain file, "{empty}"
# an empty folder; every case gets a fresh --workdir (--out for bralt_diagnose) unless it
# names one.
CASES = [
    ("al", [S, "--config.train.learning_rate=-1"], "learning_rate must be a finite number > 0"),
    ("al", [S, "--config.train.learning_rate=nan"], "learning_rate must be a finite number > 0"),
    ("al", [S, "--config.train.epochs=0"], "epochs and batch_size must be >= 1"),
    ("al", [S, "--config.train.batch_size=0"], "epochs and batch_size must be >= 1"),
    ("al", [S, "--config.train.stop_train_acc=-1"], "stop_train_acc must lie in [0, 1]"),
    ("al", [S, "--config.train.optimizer=lbfgs"], "optimizer must be 'adam' or 'sgd'"),
    ("al", [S, "--config.model.dropout=1.5"], "dropout must lie in [0, 1)"),
    ("al", [S, "--config.model.name=vgg"], "unknown model 'vgg'"),
    ("al", [S, "--config.strategy.name=bogus"], "unknown strategy 'bogus'"),
    ("al", [S, "--config.loop.budget=0"], "need init_size >= 1, budget >= 1"),
    ("al", [S, "--config.loop.init_size=0"], "need init_size >= 1, budget >= 1"),
    ("al", [S, "--config.loop.init_size=100000"], "exceeds the pool of 1257"),
    ("al", [S, "--config.loop.chunk_size=0"], "chunk_size must be >= 1"),
    ("al", [S, "--config.loop.initial_set=weird"], "initial set must be one of"),
    ("al", [S, "--config.loop.initial_minor_fraction=1.5"], "minor_fraction must be in [0, 1]"),
    ("al", [S, "--config.data.name=nope"], "unknown dataset 'nope'"),
    ("al", [S, "--config.data.val_size=-5"], "data.val_size must be >= 0"),
    ("al", [S, "--config.data.pool.noise_rate=-0.3"], "data.pool.noise_rate must lie in [0, 1]"),
    ("al", [S, "--config.data.pool.noise_rate=1.5"], "data.pool.noise_rate must lie in [0, 1]"),
    ("al", [S, "--config.data.pool.imbalance=weird"], "data.pool.imbalance must be one of"),
    ("al", [S, "--config.data.pool.imbalance_fraction=2"], "imbalance_fraction must lie in"),
    ("al", [S, "--config.loop.nope=1"], "bad --config override (no such field)"),
    ("al", ["--config=nonexistent_config"], "unknown config 'nonexistent_config'"),
    ("al", ["--config=rambo_mnist"], "this config is for experiments.one_round"),
    ("al", [S, "--workdir={file}"], "cannot use workdir"),
    ("al", [S, "--workdir={file}/sub"], "cannot use workdir"),
    ("al", ["--config=mnist_lenet", "--data_dir={empty}"], "missing mnist IDX file(s)"),
    ("al", [S, "--num_devices=0"], "num_devices must be in"),
    ("al", [S, "--config.strategy.name=waal", "--config.strategy.kwargs.variant=bogus"],
     "variant must be one of"),
    ("al", [S, "--config.strategy.name=waal", "--config.strategy.kwargs.unlabeled_per_epoch=0"],
     "unlabeled_per_epoch must be >= 1"),
    ("al", [S, "--config.strategy.name=vaal", "--config.strategy.kwargs.vae_epochs=0"],
     "must be >= 1"),
    ("al", [S, "--config.strategy.name=lossprediction",
            "--config.strategy.kwargs.detach_epoch=-1"], "need detach_epoch >= 0"),
    ("al", [S, "--config.strategy.name=cluster_margin", "--config.strategy.kwargs.hac_points=0"],
     "hac_points >= 2"),
    ("al", [S, "--config.strategy.name=bait", "--config.strategy.kwargs.lam=-1"],
     "lam must be > 0"),
    ("al", [S, "--config.strategy.name=similar", "--config.strategy.kwargs.function=xyz"],
     "function must be one of"),
    ("al", [B, "--config.strategy.kwargs.fill=best"], "fill must be one of"),
    ("compare", [S, "--strategies=margin,bogus"], "--strategies: unknown ['bogus']"),
    ("compare", [S, "--seeds="], "--seeds is empty"),
    ("compare", [S, "--seeds=0,x"], "--seeds must be integers"),
    ("compare", [S, "--collect_only"], "no finished runs under"),
    ("compare", [S, "--include={file}"], "--include: cannot read"),
    ("one_round", [R, "--config.rambo.budget=0"], "rambo.budget must be >= 1"),
    ("one_round", [R, "--config.rambo.k=0"], "need 2 <= k1 < k"),
    ("one_round", [R, "--config.rambo.utility.inner_steps=0"], "utility.inner_steps must be >= 1"),
    ("one_round", [R, "--config.rambo.m_factor=0"], "rambo.m_factor must be >= 1"),
    ("one_round", [R, "--config.rambo.utility.cg_steps=0"], "utility.cg_steps must be >= 1"),
    ("one_round", [R, "--config.strategy.name=bogus"], "unknown strategy 'bogus'"),
    ("rambo_tables", [R, "--config.rambo.n_aug=0"], "rambo.n_aug must be >= 1"),
    # Overrides of the default config (no --config) are applied when the flag is defined.
    ("al", ["--config.loop.nope=1"], "--config.loop.nope: loop has no field 'nope' (it has: "),
    ("al", [S, "--config.trian.epochs=2"], "the config has no field 'trian'"),
    ("al", [S, "--config.seed.x=1"], "--config.seed.x: seed is a value, not a section"),
]
FAST = {1, 12, 17, 24, 36, 43, 48}  # in the default suite


def _shown(args):
  """A case's arguments without the config it runs on (its test id)."""
  return [a for a in args if a not in (S, R, B)]


def _run(args, cwd):
  env = {**os.environ, "PYTHONPATH": str(_REPO)}
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                        timeout=300, cwd=cwd, env=env)


def _check_error(out, message):
  assert out.returncode not in (0, None), out.stdout[-1000:]
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last, out.stderr[-2000:]


def test_the_table_has_forty_cases():
  assert len(CASES) >= 40 and FAST <= set(range(len(CASES)))


@pytest.mark.parametrize("i", [pytest.param(i, marks=() if i in FAST else pytest.mark.slow,
                                            id=f"{CASES[i][0]}:{' '.join(_shown(CASES[i][1]))}")
                               for i in range(len(CASES))])
def test_bad_input_fails_with_one_line_and_writes_nothing(tmp_path, i):
  binary, args, message = CASES[i]
  (tmp_path / "file").write_text("not a folder")
  (tmp_path / "empty").mkdir()
  args = [a.format(file=tmp_path / "file", empty=tmp_path / "empty") for a in args]
  workdir = tmp_path / "w"
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={workdir}")
  _check_error(_run([f"experiments.{binary}", *args], tmp_path), message)
  assert not workdir.exists()  # checked before any work: nothing created
  assert (tmp_path / "file").read_text() == "not a folder"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished smoke run's workdir and its files' bytes."""
  root = tmp_path_factory.mktemp("finished")
  out = _run(["experiments.al", S, "--config.loop.rounds=1", f"--workdir={root / 'w'}"], root)
  assert out.returncode == 0, out.stderr[-2000:]
  return root / "w"


def _snapshot(workdir):
  """Every result file's bytes (``.lock`` holds the pid of whoever holds the workdir)."""
  return {p.name: p.read_bytes() for p in sorted(workdir.iterdir())
          if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("fault, message", [
    ("another_strategy", "holds a checkpoint of a different run (strategy: 'margin' → 'entropy')"),
    ("locked", "is in use by another run"),
    ("truncated_checkpoint", "checkpoint.npz is damaged"),
])
def test_a_finished_workdir_is_never_lost(finished, tmp_path, fault, message):
  import shutil
  work = tmp_path / "w"
  shutil.copytree(finished, work)
  if fault == "truncated_checkpoint":
    ckpt = work / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
  before = _snapshot(work)
  args = ["experiments.al", S, "--config.loop.rounds=1", f"--workdir={work}"]
  if fault == "another_strategy":
    args.append("--config.strategy.name=entropy")
  if fault == "locked":
    with workdir_lock(work):
      out = _run(args, tmp_path)
  else:
    out = _run(args, tmp_path)
  _check_error(out, message)
  assert _snapshot(work) == before


def test_a_damaged_history_json_is_rewritten_from_the_checkpoint(finished, tmp_path):
  import shutil
  work = tmp_path / "w"
  shutil.copytree(finished, work)
  good = json.loads((work / "history.json").read_text())
  (work / "history.json").write_text('{"rounds": [')
  out = _run(["experiments.al", S, "--config.loop.rounds=1", f"--workdir={work}"], tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads((work / "history.json").read_text())["rounds"] == good["rounds"]


def test_compare_ends_with_one_line_when_its_isolated_runs_fail(tmp_path):
  # The run's workdir is a plain file: the isolated `al` fails with its own error line, and
  # compare ends with a summary line instead of a traceback.
  (tmp_path / "w" / "margin").mkdir(parents=True)
  (tmp_path / "w" / "margin" / "seed0").write_text("not a folder")
  out = _run(["experiments.compare", S, "--isolate", "--strategies=margin", "--seeds=0",
              f"--workdir={tmp_path / 'w'}"], tmp_path)
  _check_error(out, "every run failed (see their output above): margin/seed0")
  assert (tmp_path / "w" / "margin" / "seed0").read_text() == "not a folder"
