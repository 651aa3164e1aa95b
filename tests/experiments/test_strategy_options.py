"""The options of GLISTER, SIMILAR and BRAL-T's agent reuse reach the strategies from a config
(``--config.strategy.kwargs.<option>=…``), and the one-round protocol takes the new names."""

import pytest

import jal
from experiments import build, configs
from jal.rambo import RamboConfig, one_round_strategy


def test_unset_options_leave_the_defaults():
  c = configs.get("smoke")
  for name in ("margin", "glister", "similar", "bral_t"):
    c.strategy.name = name
    assert build.strategy_kwargs(c) == ({"env": {}} if name == "bral_t" else {})


def test_set_options_reach_the_constructors():
  c = configs.get("smoke")
  c.strategy.name = "similar"
  c.strategy.kwargs.function, c.strategy.kwargs.max_columns = "flvmi", 64
  assert build.strategy_kwargs(c) == {"function": "flvmi", "max_columns": 64}
  assert build.strategy(c).name == "similar"
  c.strategy.kwargs.function = "fl3mi"
  with pytest.raises(ValueError, match="function must be one of"):
    build.strategy(c)
  c = configs.get("bralt_digits")
  c.strategy.kwargs.agent_rounds = "0,3"
  assert build.strategy_kwargs(c)["agent_rounds"] == "0,3"
  assert build.strategy(c).state is not None  # the agent is carried as the strategy's state
  c.strategy.name, c.strategy.kwargs.step_size = "glister", 0.01
  assert build.strategy_kwargs(c) == {"step_size": 0.01}


def test_one_round_protocol_takes_any_registered_strategy():
  cfg = RamboConfig(k=30, budget=10, k1=20, b=5)
  for name in ("glister", "similar", "margin"):
    assert one_round_strategy(name, cfg).name == name
  with pytest.raises(ValueError, match="unknown strategy"):
    one_round_strategy("nope", cfg)
  assert set(jal.STRATEGIES) >= {"glister", "similar"}


def test_issue14_options_reach_their_constructors_only():
  c = configs.get("smoke")
  for name in ("cluster_margin", "bait", "saal", "activeft"):
    c.strategy.name = name
    assert build.strategy_kwargs(c) == {}
  c.strategy.name, c.strategy.kwargs.lam = "bait", 0.01
  assert build.strategy_kwargs(c) == {"lam": 0.01}
  assert build.strategy(c).name == "bait"
  c.strategy.name = "margin"  # other strategies ignore it
  assert build.strategy_kwargs(c) == {}
  c.strategy.name, c.strategy.kwargs.hac_points = "cluster_margin", 500
  assert build.strategy_kwargs(c) == {"hac_points": 500}
