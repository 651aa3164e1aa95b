"""``strategy.options`` of the "al" configs: the constructors' defaults, overridable per
strategy, passed on only where they differ from the defaults (so default runs record and
resume exactly as before)."""

import inspect

import pytest

import jal
from experiments import build, configs
from experiments.configs import base


@pytest.mark.parametrize("name", sorted(base.STRATEGY_OPTIONS))
def test_options_are_the_constructor_defaults(name):
  params = inspect.signature(jal.STRATEGIES[name]).parameters
  assert base.STRATEGY_OPTIONS[name] == {k: p.default for k, p in params.items()}


def test_only_changed_options_reach_the_constructor():
  c = configs.get("smoke")
  c.strategy.name = "bait"
  assert build.strategy_kwargs(c) == {}
  c.strategy.options.bait.lam = 0.01
  assert build.strategy_kwargs(c) == {"lam": 0.01}
  assert build.strategy(c).name == "bait"
  c.strategy.kwargs = {"lam": 0.5}  # an explicit kwarg wins
  assert build.strategy_kwargs(c) == {"lam": 0.5}
  c.strategy.name = "margin"  # other strategies' options are ignored
  assert build.strategy_kwargs(c) == {}
