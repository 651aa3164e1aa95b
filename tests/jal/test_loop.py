"""Tests of the AL loop: static shapes (no recompiles), determinism, checkpoint/resume."""

import json

import jax
import numpy as np
import pytest

import jal

LOOP = jal.LoopConfig(init_size=20, budget=10, rounds=2, chunk_size=256)
TRAIN = jal.TrainConfig(epochs=3, batch_size=16)
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture(scope="module")
def data():
  return jal.data.load("digits", seed=0)


@pytest.fixture(scope="module")
def net():
  return jal.make_net("mlp", (8, 8, 1), 10, hidden=(32,))


def _run(data, net, strategy="margin", seed=0, **kw):
  return jal.run_loop(jax.random.key(seed), data, net, TRAIN, jal.get_strategy(strategy), LOOP,
                      verbose=False, **kw)


@pytest.mark.parametrize("strategy, width", [("margin", 27), ("random", 29)])
def test_round_two_compiles_nothing_new(data, strategy, width):
  # A net of its own width per case: round 0 must compile (else the checks below are vacuous,
  # as they were when both cases shared one net and the second found every program cached).
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(width,))
  compiles = []
  after_round = {}

  def listener(event, duration, **kwargs):
    if event == BACKEND_COMPILE_EVENT:
      compiles.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    _run(data, net, strategy, seed=11,
         on_round=lambda r, rec: after_round.__setitem__(r, len(compiles)))
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert after_round[0] > 0, "round 0 compiled nothing: the test would prove nothing"
  # Round 1 trains, evaluates, scores, selects and labels with the shapes of round 0.
  assert after_round[1] - after_round[0] == 0, f"round 1 compiled {after_round[1] - after_round[0]}"
  assert after_round[2] - after_round[1] == 0


def test_same_seed_same_selections_and_accuracies(data, net):
  a, b = _run(data, net, seed=3), _run(data, net, seed=3)
  assert [r["queried"] for r in a.rounds] == [r["queried"] for r in b.rounds]
  assert a.accuracies == b.accuracies
  c = _run(data, net, seed=4)
  assert [r["queried"] for r in a.rounds] != [r["queried"] for r in c.rounds]


def test_history_records_rounds(data, net):
  h = _run(data, net, seed=5)
  assert [r["n_labeled"] for r in h.rounds] == [20, 30, 40]
  for r in h.rounds:
    assert sum(r["class_counts"]) == r["n_labeled"]
    assert 0.0 <= r["test_accuracy"] <= 1.0
    assert r["train_seconds"] > 0
  assert len(h.rounds[0]["queried"]) == 10 and h.rounds[-1]["queried"] == []
  s = h.summary()
  assert s["aubc"] == pytest.approx(jal.metrics.aubc(h.accuracies, 10), abs=1e-12)
  assert s["f_acc"] == h.accuracies[-1]


class _Killed(Exception):
  pass


def test_killed_run_resumes_to_the_same_result(data, net, tmp_path):
  ref = _run(data, net, seed=7, workdir=str(tmp_path / "ref"))

  def kill_after_round_0(r, rec):
    if r == 0:
      raise _Killed

  work = str(tmp_path / "resumed")
  with pytest.raises(_Killed):
    _run(data, net, seed=7, workdir=work, on_round=kill_after_round_0)
  saved = json.loads((tmp_path / "resumed" / "history.json").read_text())
  assert len(saved["rounds"]) == 1
  got = _run(data, net, seed=7, workdir=work)
  assert [r["queried"] for r in got.rounds] == [r["queried"] for r in ref.rounds]
  assert got.accuracies == ref.accuracies
  final = json.loads((tmp_path / "resumed" / "history.json").read_text())
  assert {"rounds", "aubc", "f_acc"} <= set(final)
  assert (tmp_path / "resumed" / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_refuses_a_different_run(data, net, tmp_path):
  _run(data, net, seed=8, workdir=str(tmp_path))
  with pytest.raises(ValueError, match="different run"):
    _run(data, net, strategy="random", seed=8, workdir=str(tmp_path))
  with pytest.raises(ValueError, match="PRNG key"):
    _run(data, net, seed=9, workdir=str(tmp_path))


def test_label_rejects_bad_indices():
  mask = np.zeros(10, bool)
  mask[2] = True
  with pytest.raises(ValueError, match="duplicates"):
    jal.label(mask, [1, 1])
  with pytest.raises(ValueError, match="already labeled"):
    jal.label(mask, [2])
  with pytest.raises(ValueError, match="lie in"):
    jal.label(mask, [10])
  with pytest.raises(ValueError, match="integers"):
    jal.label(mask, [1.5])
  out = jal.label(mask, [0, 5])
  assert out.sum() == 3 and mask.sum() == 1  # the input is not modified


def test_protocol_larger_than_pool_raises(data, net):
  with pytest.raises(ValueError, match="exceeds the pool"):
    jal.run_loop(jax.random.key(0), data, net, TRAIN, jal.get_strategy("random"),
                 jal.LoopConfig(init_size=100, budget=1000, rounds=2), verbose=False)


def test_initial_mask():
  m = jal.initial_mask(jax.random.key(0), 50, 7)
  assert m.dtype == bool and m.sum() == 7
  with pytest.raises(ValueError):
    jal.initial_mask(jax.random.key(0), 5, 6)


def test_a_busy_workdir_is_refused_and_a_killed_run_frees_it(data, net, tmp_path):
  with jal.loop.workdir_lock(tmp_path):
    with pytest.raises(ValueError, match="in use by another run"):
      _run(data, net, seed=1, workdir=str(tmp_path))
  assert not (tmp_path / "checkpoint.npz").exists()  # refused before any work

  def kill(r, rec):
    raise _Killed

  with pytest.raises(_Killed):
    _run(data, net, seed=1, workdir=str(tmp_path), on_round=kill)
  with jal.loop.workdir_lock(tmp_path):  # the killed run left it free
    pass


def test_a_workdir_that_is_a_file_is_refused_before_training(data, net, tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(ValueError, match="cannot use workdir"):
    _run(data, net, workdir=str(f / "sub"))


def test_diverged_training_stops_the_run_before_any_selection(data, net, tmp_path):
  bad = jal.TrainConfig(epochs=3, batch_size=16, learning_rate=1e20)
  with pytest.raises(FloatingPointError, match="round 0: training diverged"):
    jal.run_loop(jax.random.key(0), data, net, bad, jal.get_strategy("margin"), LOOP,
                 verbose=False, workdir=str(tmp_path))
  assert not (tmp_path / "history.json").exists()


def test_non_finite_pixels_are_rejected_before_training(data, net):
  x = np.array(data.x_train)
  x[5, 2, 3, 0] = np.nan
  with pytest.raises(ValueError, match="x_train holds 1 non-finite"):
    jal.run_loop(jax.random.key(0), data._replace(x_train=x), net, TRAIN,
                 jal.get_strategy("margin"), LOOP, verbose=False)
