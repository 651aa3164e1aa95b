"""A real multi-process run: 2 CPU JAX processes × 2 devices joined by ``jax.distributed``.

``tests/multihost_worker.py`` runs in two subprocesses (coordinator ``localhost:<free
port>``, gloo collectives); each assembles the pool from its own rows only. Their reports
must agree with each other and with :func:`multihost_worker.compute` run here on one
process and one device without a mesh.
"""

import importlib.util
import json
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.child_env import child_env

_REPO = pathlib.Path(__file__).resolve().parents[1]
_WORKER = _REPO / "tests" / "multihost_worker.py"
_TIMEOUT = 240


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(cmds: list[list[str]], logdir: pathlib.Path, extra_env=None):
  """Starts one subprocess per command; output goes to files, not pipes (a worker blocked on
  a full pipe would stall the others in the distributed shutdown barrier)."""
  logs, procs = [], []
  for i, cmd in enumerate(cmds):
    out, err = logdir / f"proc{i}.out", logdir / f"proc{i}.err"
    with open(out, "w") as fo, open(err, "w") as fe:
      procs.append(subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True,
                                    env=child_env(**(extra_env(i) if extra_env else {}))))
    logs.append((out, err))
  return procs, logs


def _finish(procs, logs):
  """Waits (``_TIMEOUT`` s in all); ``[(stdout, stderr)]``. Skips only when distributed CPU
  JAX cannot start at all here; any other failure fails."""
  try:
    for p in procs:
      p.wait(timeout=_TIMEOUT)
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    tails = "\n".join(e.read_text()[-2000:] for _, e in logs)
    pytest.fail(f"multi-process workers did not finish in {_TIMEOUT}s:\n{tails}")
  outs = [(o.read_text(), e.read_text()) for o, e in logs]
  if any(p.returncode for p in procs):
    errs = "\n".join(e[-3000:] for _, e in outs)
    if any(s in errs for s in ("make_gloo_tcp_collectives", "gloo is not", "DEADLINE_EXCEEDED")):
      pytest.skip(f"cannot start distributed CPU JAX here:\n{errs}")
    pytest.fail(f"multi-process workers failed:\n{errs}")
  return outs


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
  """``(multi-process reports [2], single-process reference, workdir)``."""
  workdir = tmp_path_factory.mktemp("multihost")
  port = str(_free_port())
  # -P: tests/ (which holds the test package tests/jal) stays off sys.path, so ``import jal``
  # finds the library.
  procs, logs = _start([[sys.executable, "-P", str(_WORKER), str(i), "2", port, "2", str(workdir)]
                        for i in range(2)], tmp_path_factory.mktemp("logs"))
  # The reference (one process, one device, no mesh) runs here while the workers run.
  spec = importlib.util.spec_from_file_location("multihost_worker", _WORKER)
  worker = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(worker)
  single = worker.compute(None, str(tmp_path_factory.mktemp("single")))
  outs = _finish(procs, logs)
  multi = [json.loads([ln for ln in o.splitlines() if ln.startswith("JSON")][-1][4:])
           for o, _ in outs]
  return multi, single, workdir


def test_two_processes_with_two_devices_each(reports):
  multi, _, _ = reports
  assert [r["process_index"] for r in multi] == [0, 1]
  assert all(r["process_count"] == 2 and r["devices"] == 4 and r["local_devices"] == 2
             for r in multi)


def test_each_process_holds_only_its_rows(reports):
  multi, _, _ = reports
  # 202 rows padded to 204 over 4 devices: 102 rows per process, the last 2 are padding.
  assert [r["rows"] for r in multi] == [[0, 102], [102, 204]]
  assert all(r["x_global_shape"] == [204, 8, 8, 1] and r["x_local_rows"] == 102 and
             r["x_spec"].startswith("P('data'") for r in multi)


_KEYS = ("logits", "emb_sum", "el2n", "topk_margin", "select_random", "select_margin",
         "fit_params", "fit_replicated", "loop_random_queried", "loop_random_acc",
         "loop_margin_queried", "loop_margin_acc")


def test_processes_agree(reports):
  multi, _, _ = reports
  for k in _KEYS:
    assert multi[0][k] == multi[1][k], k


def test_sharded_scoring_equals_single_device(reports):
  multi, single, _ = reports
  for k in ("logits", "emb_sum", "el2n"):
    np.testing.assert_allclose(multi[0][k], single[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_selection_equals_single_device(reports):
  multi, single, _ = reports
  for k in ("topk_margin", "select_random", "select_margin"):
    assert multi[0][k] == single[k], k
    assert len(set(single[k])) == len(single[k]) > 0


def test_fit_with_mesh_matches_single_device(reports):
  multi, single, _ = reports
  assert multi[0]["fit_replicated"]
  for a, b in zip(multi[0]["fit_params"], single["fit_params"]):
    # Gradients are all-reduced in another order: equal up to float rounding.
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["random", "margin"])
def test_run_loop_equals_single_device(reports, name):
  multi, single, _ = reports
  assert multi[0][f"loop_{name}_queried"] == single[f"loop_{name}_queried"]
  np.testing.assert_allclose(multi[0][f"loop_{name}_acc"], single[f"loop_{name}_acc"],
                             atol=1e-6)


def test_only_process_zero_writes(reports):
  multi, _, workdir = reports
  assert multi[1]["files"] == [] and not (workdir / "p1").exists()
  files = set(multi[0]["files"])
  for name in ("random", "margin"):
    assert {f"p0/{name}/history.json", f"p0/{name}/checkpoint.npz",
            f"p0/{name}/curve.png"} <= files


@pytest.mark.slow  # ~50 s; the in-library 2-process run above stays in the default suite
def test_binary_two_processes_equals_single_process(tmp_path):
  """``experiments.al --distributed --num_devices=-1`` on 2 processes × 2 devices (env
  ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``) vs one process
  without a mesh, all three at once: same queries, same accuracies, only process 0 writes."""
  args = ["-m", "experiments.al", "--config=default", "--config.strategy.name=margin",
          "--config.loop.init_size=20", "--config.loop.budget=10", "--config.loop.rounds=2",
          "--config.train.epochs=3", "--config.train.batch_size=16", "--config.seed=0"]
  port = str(_free_port())
  cmds = [[sys.executable, *args, "--distributed", "--num_devices=-1",
           f"--workdir={tmp_path / f'p{i}'}"] for i in range(2)]
  cmds.append([sys.executable, *args, f"--workdir={tmp_path / 'single'}"])

  def env(i):
    if i == 2:
      return {"JAX_NUM_CPU_DEVICES": "1"}
    return {"JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(i), "JAX_NUM_CPU_DEVICES": "2"}

  logs = tmp_path / "logs"
  logs.mkdir()
  outs = _finish(*_start(cmds, logs, env))
  assert "pool 1257" in outs[0][0] and "pool" not in outs[1][0]
  assert not (tmp_path / "p1").exists()
  multi = json.loads((tmp_path / "p0" / "history.json").read_text())
  single = json.loads((tmp_path / "single" / "history.json").read_text())
  assert [r["queried"] for r in multi["rounds"]] == [r["queried"] for r in single["rounds"]]
  np.testing.assert_allclose([r["test_accuracy"] for r in multi["rounds"]],
                             [r["test_accuracy"] for r in single["rounds"]], atol=1e-6)
