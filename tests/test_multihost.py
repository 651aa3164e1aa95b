"""A real multi-process run: 2 CPU JAX processes × 2 devices joined by ``jax.distributed``.

``tests/multihost_worker.py`` runs in two subprocesses (coordinator ``localhost:<free
port>``, gloo collectives); each assembles the pool from its own rows only. Their reports
must agree with each other and with :func:`multihost_worker.compute` run here on one
process and one device without a mesh.
"""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_WORKER = _REPO / "tests" / "multihost_worker.py"
_TIMEOUT = 240


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(workdir: pathlib.Path, nproc: int = 2, local_devices: int = 2):
  env = dict(os.environ, PYTHONPATH=str(_REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("XLA_FLAGS", None)
  port = str(_free_port())
  # Output goes to files, not pipes: a worker blocked on a full pipe would stall the other
  # one in the distributed shutdown barrier.
  logs = [(workdir.parent / f"{workdir.name}_{i}.out", workdir.parent / f"{workdir.name}_{i}.err")
          for i in range(nproc)]
  procs = []
  for i, (out, err) in enumerate(logs):
    with open(out, "w") as fo, open(err, "w") as fe:
      procs.append(subprocess.Popen([sys.executable, str(_WORKER), str(i), str(nproc), port,
                                     str(local_devices), str(workdir)], stdout=fo, stderr=fe,
                                    text=True, env=env))
  try:
    for p in procs:
      p.wait(timeout=_TIMEOUT)
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    tails = "\n".join(e.read_text()[-2000:] for _, e in logs)
    pytest.fail(f"multi-process workers did not finish in {_TIMEOUT}s:\n{tails}")
  return procs, [(o.read_text(), e.read_text()) for o, e in logs]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
  """``(multi-process reports [2], single-process reference, workdir)``."""
  workdir = tmp_path_factory.mktemp("multihost")
  procs, outs = _launch(workdir)
  errs = "\n".join(e[-2000:] for _, e in outs)
  if any(p.returncode for p in procs):
    # Only an environment that cannot start distributed CPU JAX at all is skipped.
    if any(s in errs for s in ("make_gloo_tcp_collectives", "gloo is not", "DEADLINE_EXCEEDED")):
      pytest.skip(f"cannot start distributed CPU JAX here:\n{errs}")
    pytest.fail(f"multi-process workers failed:\n{errs}")
  multi = [json.loads([ln for ln in o.splitlines() if ln.startswith("JSON")][-1][4:])
           for o, _ in outs]
  spec = importlib.util.spec_from_file_location("multihost_worker", _WORKER)
  worker = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(worker)
  single = worker.compute(None, str(tmp_path_factory.mktemp("single")))
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
