"""The experiment binaries from the command line (subprocesses; smoke configs)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _run(args, cwd, timeout=300):
  # From another directory: the defaults are absolute paths; PYTHONPATH picks this checkout.
  env = {**os.environ, "PYTHONPATH": str(_REPO)}
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                        timeout=timeout, cwd=cwd, env=env)


def test_al_runs_from_any_directory(tmp_path):
  out = _run(["experiments.al", "--config=smoke", "--config.loop.rounds=1",
              "--config.strategy.name=entropy", f"--workdir={tmp_path / 'w'}"], tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "test_acc" in out.stdout and "AUBC" in out.stdout
  saved = json.loads((tmp_path / "w" / "history.json").read_text())
  assert saved["rounds"][-1]["n_labeled"] == 30 and saved["config"]["strategy"] == "entropy"


def test_config_of_another_binary_fails_at_once(tmp_path):
  out = _run(["experiments.al", f"--config={_REPO / 'experiments/configs/rambo_mnist.py'}",
              f"--workdir={tmp_path / 'w'}"], tmp_path)
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: this config is for experiments.one_round"), out.stderr[-2000:]
  assert not (tmp_path / "w").exists()
  out = _run(["experiments.al", "--config=smoke", "--config.loop.nope=1"], tmp_path)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1].startswith("error: bad --config override")


def test_binary_reports_missing_data_dir(tmp_path):
  out = _run(["experiments.al", "--config=mnist_lenet", f"--data_dir={tmp_path}",
              f"--workdir={tmp_path / 'w'}"], tmp_path)
  assert out.returncode != 0
  assert "error:" in out.stderr and "train-images-idx3-ubyte.gz" in out.stderr


def test_one_round_binary(tmp_path):
  out = _run(["experiments.one_round", "--config=rambo_smoke", "--config.strategy.name=margin",
              f"--workdir={tmp_path}"], tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads((tmp_path / "result.json").read_text())["labeled"] == 40


@pytest.mark.slow
def test_bench_binary_and_alias(tmp_path):
  for module in ("experiments.bench", "experiments.benchmark"):
    out = _run([module, "--config=bench_smoke", f"--out={tmp_path / 'b.json'}"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) == {"meta", "machine", "scores"}
    assert result["meta"]["settings"]["matmul_n"] == 128
