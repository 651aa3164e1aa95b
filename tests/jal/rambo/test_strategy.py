"""RAMBO, DULO and the null control as Strategies of one round of ``jal.run_loop``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.rambo import (
  BilevelConfig,
  RamboConfig,
  UtilityFit,
  make_set_net,
  prepare_offline,
  run_dulo,
  run_one_round,
  run_rambo,
  strategy,
  trial_s0,
)

CFG = RamboConfig(k=30, budget=10, k1=20, b=5, n_aug=4, offline_pairs=6, offline_steps=5,
                  m_factor=2, fit_chunk=6, dulo_candidates=20, ot_debiased=False,
                  utility=BilevelConfig(outer_steps=2, inner_steps=3, cg_steps=2))
LOOP = jal.LoopConfig(init_size=CFG.k, budget=CFG.budget, rounds=1)


@pytest.fixture(scope="module")
def setup():
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(8,))
  return data, net, jal.TrainConfig(epochs=3, batch_size=16)


def _loop(setup, strat, seed=0):
  data, net, tc = setup
  return jal.run_loop(jax.random.key(seed), data, net, tc, strat, LOOP, verbose=False)


@pytest.mark.parametrize("name", [pytest.param("rambo", marks=pytest.mark.slow),
                                  pytest.param("dulo", marks=pytest.mark.slow), "null"])
def test_one_round_of_the_loop(setup, name):
  """Each runs as one round of the loop, and run_one_round's thin protocol is that round."""
  hist = _loop(setup, jal.get_strategy(name, cfg=CFG))
  data, net, tc = setup
  if name == "rambo":
    res = run_rambo(jax.random.key(0), data, net, tc, CFG, keep_model=True)
    assert res["set_net"] is not None and res["utility_params"] is not None
  else:
    res = run_one_round(jax.random.key(0), data, net, tc, CFG, name)
  r0, r1 = hist.rounds
  assert list(res["selected"]) == r0["queried"]
  assert (res["val_accuracy"], res["test_accuracy"]) == (r1["val_accuracy"], r1["test_accuracy"])
  queried = np.asarray(r0["queried"])
  s0 = trial_s0(jax.random.key(0), setup[0], CFG.k)
  assert queried.shape == (CFG.budget,) and np.unique(queried).size == CFG.budget
  assert not np.isin(queried, s0).any()
  assert r1["n_labeled"] == CFG.k + CFG.budget and 0.0 <= r1["val_accuracy"] <= 1.0
  info = r0.get("pick_info", {})
  if name == "rambo":  # S₀′ and the τ₁ = 2 refinement sets
    assert len(info["refinement_accuracies"]) == (CFG.k - CFG.k1) // CFG.b + 1
    assert res["refinement_accuracies"] == info["refinement_accuracies"]
    assert {"offline_utilities", "offline_fit", "bilevel_training"} <= set(info["timings"])
  if name == "dulo":
    assert "offline_fit" in info["timings"]


@pytest.mark.slow  # ~23 s (CI time)
def test_flat_utility_rambo_picks_what_null_picks(setup, monkeypatch):
  """A utility model whose score is the same for every set makes RAMBO the null control."""
  def flat_fit(key, cfg, net, tc, x0, *args, **kwargs):
    sn = make_set_net(x0.shape[1:], extractor=cfg.extractor)
    params = sn.init(jax.random.key(1))
    params["score_head"]["kernel"] = jax.tree.map(jnp.zeros_like, params["score_head"]["kernel"])
    return UtilityFit(sn, params, [], {})

  monkeypatch.setattr(strategy, "fit_rambo_utility", flat_fit)
  flat = _loop(setup, strategy.rambo_strategy(CFG))
  null = _loop(setup, strategy.null_strategy(CFG))
  assert flat.rounds[0]["queried"] == null.rounds[0]["queried"]
  assert flat.accuracies == null.accuracies


@pytest.mark.slow  # ~28 s on 2 cores (CI time)
def test_dulo_with_a_shared_offline_equals_dulo_alone(setup):
  data, net, tc = setup
  key = jax.random.key(4)
  off = prepare_offline(key, data, net, tc, CFG)  # with OT targets, as RAMBO's trial draws them
  np.testing.assert_array_equal(off.s0, trial_s0(key, data, CFG.k))
  shared, alone = run_dulo(key, data, net, tc, CFG, offline=off), run_dulo(key, data, net, tc, CFG)
  assert shared["selected"] == alone["selected"]
  for k in ("val_accuracy", "test_accuracy"):
    assert shared[k] == alone[k]


def test_offline_of_another_s0_is_rejected(setup):
  data, net, tc = setup
  off = prepare_offline(jax.random.key(5), data, net, tc, CFG, ot=False)
  with pytest.raises(ValueError, match="another S₀"):
    _loop(setup, strategy.dulo_strategy(CFG, offline=off), seed=6)


@pytest.mark.parametrize("name", ["rambo", "dulo"])
def test_missing_validation_split_is_a_clear_error(setup, name):
  data, net, tc = setup
  labeled = np.zeros(data.x_train.shape[0], bool)
  labeled[:CFG.k] = True
  ctx = jal.Context(net, net.init(jax.random.key(0)), jnp.asarray(data.x_train),
                    jnp.asarray(data.y_train), jnp.asarray(labeled), data.num_classes,
                    train_config=tc)
  with pytest.raises(ValueError, match=r"lacks ctx\.x_val, ctx\.y_val;"):
    jal.select(jal.get_strategy(name, cfg=CFG), jax.random.key(0), ctx, CFG.budget)


def test_refinement_sizes_must_fit_s0(setup):
  with pytest.raises(ValueError, match="k1 < k"):
    _loop(setup, strategy.rambo_strategy(CFG, k=200, budget=500, k1=50, b=50))


def test_constructors_are_config_friendly():
  for name in ("rambo", "dulo", "null"):
    s = jal.get_strategy(name)
    assert s.name == name and callable(s.score) and callable(s.pick)
  a = strategy.rambo_strategy(k=30, budget=10, k1=20, b=5, utility={"outer_steps": 2})
  b = strategy.rambo_strategy({"k": 30, "budget": 10, "k1": 20, "b": 5,
                               "utility": {"outer_steps": 2}})
  assert a.name == b.name == "rambo"
  cfg = jal.rambo.as_rambo_config({"k": 30, "budget": 10, "k1": 20, "b": 5},
                                  utility={"outer_steps": 2})
  assert cfg.utility == BilevelConfig(outer_steps=2) and cfg.k1 == 20


def test_one_round_trial_stops_when_training_diverges():
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(8,))
  bad = jal.TrainConfig(epochs=2, batch_size=16, learning_rate=1e20)
  with pytest.raises(FloatingPointError, match="the classifier on S0 diverged"):
    jal.rambo.run_one_round(jax.random.key(0), data, net, bad,
                            jal.rambo.RamboConfig(k=30, budget=10, k1=20, b=5), "null")
