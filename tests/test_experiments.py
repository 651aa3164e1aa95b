"""Tests of the experiment binaries (configs, al, compare)."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

import jal
from experiments import common, compare, configs


def test_every_config_resolves():
  for name in configs.CONFIGS:
    c = common.resolve_config(name, {"seed": 3})
    assert c["seed"] == 3
    common.train_config(c)
    common.loop_config(c)


def test_bad_config_names_raise():
  with pytest.raises(ValueError, match="unknown config"):
    configs.get("nope")
  with pytest.raises(ValueError, match="unknown config keys"):
    common.resolve_config("default", {"not_a_key": 1})


def test_run_writes_history_and_curve(tmp_path):
  summary = common.run(common.resolve_config("smoke", {"strategy": "badge"}), str(tmp_path),
                       verbose=False)
  saved = json.loads((tmp_path / "history.json").read_text())
  assert {"rounds", "aubc", "f_acc", "config"} <= set(saved)
  assert saved["aubc"] == pytest.approx(summary["aubc"])
  assert [r["n_labeled"] for r in saved["rounds"]] == [20, 30, 40]
  assert (tmp_path / "curve.png").stat().st_size > 1000


def test_binary_runs_from_the_command_line(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "experiments.al", "--config=smoke", "--rounds=1",
       f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "test_acc" in out.stdout and "AUBC" in out.stdout
  assert json.loads((tmp_path / "history.json").read_text())["rounds"][-1]["n_labeled"] == 30


def test_binary_reports_missing_data_dir(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "experiments.al", "--config=mnist_lenet",
       f"--data_dir={tmp_path}", f"--workdir={tmp_path / 'w'}"],
      capture_output=True, text=True, timeout=300)
  assert out.returncode != 0
  assert "train-images-idx3-ubyte.gz" in out.stderr


def test_compare_aggregates_and_tabulates():
  def hist(accs):
    rounds = [{"n_labeled": 10 * (i + 1), "test_accuracy": a, "train_seconds": 1.0,
               "score_seconds": 0.5, "select_seconds": 0.25, "queried": [i]}
              for i, a in enumerate(accs)]
    rounds[-1].update(score_seconds=0.0, select_seconds=0.0, queried=[])
    return {"rounds": rounds, "aubc": (accs[0] + accs[1]) / 2, "f_acc": accs[-1]}

  summary = compare.aggregate({"a": [hist([0.5, 0.7]), hist([0.7, 0.9])]})
  s = summary["a"]
  assert s["acc_mean"] == pytest.approx([0.6, 0.8])
  assert s["acc_std"] == pytest.approx([0.1, 0.1])
  assert s["aubc"][0] == pytest.approx(0.7)
  # 95% CI half-width of [0.6, 0.8]: t_{0.975,1} * std(ddof=1) / sqrt(2) = 12.7062 * 0.1
  assert s["aubc"][1] == pytest.approx(12.7062047 * 0.1, rel=1e-5)
  assert s["seconds_per_round"] == {"train": 1.0, "score": 0.5, "select": 0.25}
  table = compare.markdown_table(summary)
  assert "| a | 0.6000±0.1000 | 0.8000±0.1000 |" in table


@pytest.mark.slow
def test_bralt_diagnose_reports_agreement():
  from experiments import bralt_diagnose, common
  config = common.resolve_config("bralt_digits", {})
  data = jal.data.load("digits")
  out = bralt_diagnose.diagnose(config, data, 100, 0)
  assert out["reward_loss_last_sampling"] < out["reward_loss_first_sampling"]
  assert -1.0 <= out["action_agreement"]["spearman"] <= 1.0
  # The oracle batch is by construction the best-scored class-balanced batch.
  bo = out["batch_oracle"]
  assert bo["gradnd_gt"]["mean_percentile"] >= bo["random"]["mean_percentile"]


def test_compilation_cache_dir_and_opt_out(tmp_path, monkeypatch):
  from experiments import common
  old = jax.config.jax_compilation_cache_dir
  try:
    assert common.enable_compilation_cache("") is None
    assert jax.config.jax_compilation_cache_dir == old
    monkeypatch.setenv("JAL_COMPILATION_CACHE", str(tmp_path))
    assert common.enable_compilation_cache() == str(tmp_path)
    assert jax.config.jax_compilation_cache_dir == str(tmp_path)
  finally:
    jax.config.update("jax_compilation_cache_dir", old)


def test_rambo_diagnose_pair_accuracy_by_hand():
  from experiments.rambo_diagnose import pair_accuracy
  # Pairs: ordered right, wrong, tie in u (skipped), right.
  got = pair_accuracy([2, 0, 5, 1], [1, 1, 0, 0], [.9, .2, .5, .7], [.8, .1, .5, .6])
  assert got == pytest.approx(2 / 3)
  assert pair_accuracy([1], [2], [.5], [.5]) == 0.5


def test_rambo_diagnose_utility_noise_by_hand():
  from experiments.rambo_diagnose import utility_noise
  u1, u2 = np.array([.9, .5, .7, .6]), np.array([.8, .6, .4, .6])
  v1, v2 = np.array([.7, .6, .8, .5]), np.array([.8, .5, .5, .7])
  got = utility_noise(u1, u2, v1, v2)
  # Pairs with u1 != u2: 0 (u: 1 > 2, v: 1 < 2, disagree), 1 (u: 1 < 2, v: 1 > 2, disagree),
  # 2 (both 1 > 2, agree); pair 3 is a tie in u and is skipped.
  assert got["retrain_pair_agreement"] == pytest.approx(1 / 3)
  d = np.array([.2, -.1, -.1, .1, 0, .1, -.1, -.1])  # u - v over the 8 subsets
  assert got["utility_noise_sd"] == pytest.approx(np.std(d, ddof=1) / np.sqrt(2), rel=1e-12)
  diff_sd = np.std(u1 - u2, ddof=1)
  assert got["pair_difference_sd"] == pytest.approx(diff_sd, rel=1e-12)
  assert got["noise_share_of_pair_variance"] == pytest.approx(
      2 * got["utility_noise_sd"] ** 2 / diff_sd ** 2, rel=1e-12)


def test_rambo_speed_unit_costs_tiny():
  from experiments.rambo_speed import unit_costs
  got = unit_costs(pool=8, pairs=4, subsets=2, steps=2)
  for k in ("inner_step_s", "lenet_training_s"):
    assert got[k] > 0
  floor = 6000 * got["inner_step_s"] + 60 * got["hypergradient_step_s"] + 1000 * got[
      "lenet_training_s"]
  assert got["full_trial_floor_s"] == pytest.approx(floor)
