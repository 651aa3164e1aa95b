"""What jal computes must not change by accident: every strategy's recorded selections.

Reruns each case of ``tests/golden/cases.py`` and compares it with ``selections.json``:
queried indices bit-for-bit, accuracies to 1e-6.
"""

import json

import jax
import numpy as np
import pytest

import jal
from tests.golden import cases

_GOLDEN = json.loads(cases.GOLDEN.read_text())


def test_every_registered_strategy_has_a_golden():
  assert set(jal.STRATEGIES) <= set(_GOLDEN), sorted(set(jal.STRATEGIES) - set(_GOLDEN))


# The BRAL-T ablations run the machinery of bral_t (kept in the default suite) with another
# score or trust group: in the slow suite, with the one-round RAMBO and DULO (null stays) and
# the learned baselines (VAAL's VAE compile alone takes a minute on 2 cores; WAAL's and
# LossPrediction's own trainings, 10–25 s each, are checked in the default suite by
# tests/jal/strategies/learned/).
_SLOW = ("bral_t_wo_cl", "bral_diffset", "rambo", "vaal", "dulo", "waal", "lossprediction")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in cases.all_cases()])
def test_golden_selection(name):
  want, got = _GOLDEN[name], cases.run_case(name)
  assert set(got) == set(want)
  for k in want:
    if k == "queried":
      assert len(got[k]) == len(want[k])
      for r, (g, w) in enumerate(zip(got[k], want[k])):
        assert g == w, f"{name}: round {r} queried other indices"
    else:
      np.testing.assert_allclose(got[k], want[k], atol=1e-6, err_msg=f"{name}: {k}")


def test_bral_t_golden_run_reports_its_rounds():
  # The golden BRAL-T run (cached by ``cases.loop_history``) is also the end-to-end check of
  # the strategy's invariants and of what each round reports.
  hist = cases.loop_history("bral_t")
  loop, n = cases.LOOP, jal.data.load("digits").y_train.shape[0]
  labeled = np.zeros(n, bool)
  labeled[np.asarray(jal.initial_mask(jax.random.split(jax.random.key(0))[0], n,
                                      loop.init_size))] = True
  for rec in hist.rounds[:-1]:
    q = np.asarray(rec["queried"])
    assert q.size == loop.budget and np.unique(q).size == loop.budget and not labeled[q].any()
    labeled[q] = True
    info = rec["pick_info"]  # the RL / selection split and the reward net's losses
    assert info["rl_seconds"] > 0 and info["selection_seconds"] > 0
    assert np.isfinite(info["reward_loss_first"]) and np.isfinite(info["reward_loss_last"])
  assert [r["n_labeled"] for r in hist.rounds] == [30, 45, 60]
  assert "pick_info" not in hist.rounds[-1]
