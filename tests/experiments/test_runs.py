"""One experiment of a config: run_al (experiments.al / compare) and run_one_round."""

import json

import pytest

import jal
from experiments import configs, runs


def test_run_al_leaves_history_to_the_loop(tmp_path):
  config = configs.get("smoke")
  config.strategy.name = "badge"
  summary = runs.run_al(config, str(tmp_path), verbose=False)
  saved = json.loads((tmp_path / "history.json").read_text())
  assert {"rounds", "aubc", "f_acc", "config"} <= set(saved)
  assert saved["aubc"] == pytest.approx(summary["aubc"]) and summary["wall_seconds"] > 0
  assert [r["n_labeled"] for r in saved["rounds"]] == [20, 30, 40]
  assert saved["config"]["strategy_kwargs"] == {} and saved["config"]["train_transform"] is None
  assert "pool_settings" not in saved["config"]  # only recorded when the pool is changed
  assert (tmp_path / "curve.png").stat().st_size > 1000
  assert saved["finished"] is True and saved["wall_seconds"] > 0  # marked by the loop


def test_run_al_applies_the_data_section(tmp_path):
  config = configs.get("smoke")
  config.loop.rounds = 1
  config.data.train_transform.update(name="long_tail", imbalance_ratio=5.0)
  config.data.pool.noise_rate = 0.1
  runs.run_al(config, str(tmp_path), verbose=False)
  saved = json.loads((tmp_path / "history.json").read_text())["config"]
  assert saved["train_transform"] == {"name": "long_tail", "seed": 0, "imbalance_ratio": 5.0}
  assert saved["pool_settings"]["noise_rate"] == 0.1


def test_run_one_round_writes_result(tmp_path):
  config = configs.get("rambo_smoke")
  config.strategy.name = "margin"
  res = runs.run_one_round(config, str(tmp_path), verbose=False)
  out = json.loads((tmp_path / "result.json").read_text())
  for key in ("val_accuracy", "test_accuracy", "seconds", "settings"):
    assert key in out
  assert out["labeled"] == config.rambo.k + config.rambo.budget == res["labeled"]
  assert out["settings"]["config"]["strategy"]["name"] == "margin"
  assert out["settings"]["config"]["model"]["kwargs"]["hidden"] == [32]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["rambo", "dulo"])
def test_one_round_rambo_smoke_end_to_end(tmp_path, strategy):
  config = configs.get("rambo_smoke")
  config.strategy.name = strategy
  runs.run_one_round(config, str(tmp_path), verbose=False)
  out = json.loads((tmp_path / "result.json").read_text())
  assert 0.0 <= out["val_accuracy"] <= 1.0 and out["labeled"] == 40
  assert out["settings"]["rambo"]["utility"]["bilevel"] is True


@pytest.mark.slow
def test_one_round_rambo_smoke_with_all_flags(tmp_path):
  config = configs.get("rambo_smoke")
  config.rambo.utility.hypergrad = "itd"
  config.rambo.aug_distance = "sinkhorn"
  config.data.pool.update(noise_rate=0.2, imbalance="remove")
  runs.run_one_round(config, str(tmp_path), verbose=False)
  out = json.loads((tmp_path / "result.json").read_text())
  assert 0.0 <= out["val_accuracy"] <= 1.0 and out["labeled"] == 40
  assert out["settings"]["rambo"]["utility"]["hypergrad"] == "itd"
  assert out["settings"]["rambo"]["aug_distance"] == "sinkhorn"
  assert sum(out["pool_class_counts"]) < jal.data.load("digits").x_train.shape[0]
