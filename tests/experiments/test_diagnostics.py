"""experiments/diagnostics.py (rambo_diagnose, bralt_diagnose) and bench/rambo_costs.py."""

import numpy as np
import pytest

import jal
from experiments import configs, diagnostics


def test_rambo_diagnose_pair_accuracy_by_hand():
  # Pairs: ordered right, wrong, tie in u (skipped), right.
  got = diagnostics.pair_accuracy([2, 0, 5, 1], [1, 1, 0, 0], [.9, .2, .5, .7], [.8, .1, .5, .6])
  assert got == pytest.approx(2 / 3)
  assert diagnostics.pair_accuracy([1], [2], [.5], [.5]) == 0.5


def test_rambo_diagnose_utility_noise_by_hand():
  u1, u2 = np.array([.9, .5, .7, .6]), np.array([.8, .6, .4, .6])
  v1, v2 = np.array([.7, .6, .8, .5]), np.array([.8, .5, .5, .7])
  got = diagnostics.utility_noise(u1, u2, v1, v2)
  # Pairs with u1 != u2: 0 (u: 1 > 2, v: 1 < 2, disagree), 1 (u: 1 < 2, v: 1 > 2, disagree),
  # 2 (both 1 > 2, agree); pair 3 is a tie in u and is skipped.
  assert got["retrain_pair_agreement"] == pytest.approx(1 / 3)
  d = np.array([.2, -.1, -.1, .1, 0, .1, -.1, -.1])  # u - v over the 8 subsets
  assert got["utility_noise_sd"] == pytest.approx(np.std(d, ddof=1) / np.sqrt(2), rel=1e-12)
  diff_sd = np.std(u1 - u2, ddof=1)
  assert got["pair_difference_sd"] == pytest.approx(diff_sd, rel=1e-12)
  assert got["noise_share_of_pair_variance"] == pytest.approx(
      2 * got["utility_noise_sd"] ** 2 / diff_sd ** 2, rel=1e-12)


@pytest.mark.slow  # 60 s; the unit costs' parts are tested in tests/jal/train and tests/jal/rambo
def test_rambo_speed_unit_costs_tiny():
  from experiments.bench.rambo_costs import unit_costs
  got = unit_costs(pool=8, pairs=4, subsets=2, steps=2)
  for k in ("inner_step_s", "lenet_training_s"):
    assert got[k] > 0
  floor = 6000 * got["inner_step_s"] + 60 * got["hypergradient_step_s"] + 1000 * got[
      "lenet_training_s"]
  assert got["full_trial_floor_s"] == pytest.approx(floor)


@pytest.mark.slow
def test_bralt_diagnose_reports_agreement():
  out = diagnostics.bralt_round(configs.get("bralt_digits"), jal.data.load("digits"), 100, 0)
  assert out["reward_loss_last_sampling"] < out["reward_loss_first_sampling"]
  assert -1.0 <= out["action_agreement"]["spearman"] <= 1.0
  # The oracle batch is by construction the best-scored class-balanced batch.
  bo = out["batch_oracle"]
  assert bo["gradnd_gt"]["mean_percentile"] >= bo["random"]["mean_percentile"]
