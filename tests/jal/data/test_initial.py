"""BRAL-T's twisted initial sets (Table 8): class composition, the loop and the configs."""

import jax
import numpy as np
import pytest

import jal
from experiments import build, configs
from jal.data import InitialSet, main_and_rare_classes, twisted_initial_mask

# A CIFAR10-imb-like pool: class c has 20 (c + 1) rows, shuffled.
COUNTS = 20 * (np.arange(10) + 1)
Y = np.random.default_rng(0).permutation(np.repeat(np.arange(10), COUNTS))


def test_main_and_rare_classes_sort_by_count_with_ties_to_the_lower_id():
  main, rare = main_and_rare_classes(Y, 10)
  assert main.tolist() == [5, 6, 7, 8, 9] and rare.tolist() == [0, 1, 2, 3, 4]
  balanced = np.repeat(np.arange(4), 3)
  assert [m.tolist() for m in main_and_rare_classes(balanced, 4)] == [[0, 1], [2, 3]]
  odd = np.repeat(np.arange(5), [5, 1, 4, 2, 3])  # K = 5: ⌊5/2⌋ = 2 main classes
  assert [m.tolist() for m in main_and_rare_classes(odd, 5)] == [[0, 2], [1, 3, 4]]


@pytest.mark.parametrize("mode,small,large", [("twisted_main", range(5), range(5, 10)),
                                              ("twisted_rare", range(5, 10), range(5))])
def test_twisted_sets_take_the_stated_counts_from_each_half(mode, small, large):
  mask = twisted_initial_mask(jax.random.key(1), Y, 200, mode, 10, minor_fraction=0.05)
  counts = np.bincount(Y[mask], minlength=10)
  assert mask.sum() == 200
  assert counts[list(small)].sum() == 10 and counts[list(large)].sum() == 190
  # Same key, same set; another key, another one.
  assert np.array_equal(mask, twisted_initial_mask(jax.random.key(1), Y, 200, mode, 10))
  assert not np.array_equal(mask, twisted_initial_mask(jax.random.key(2), Y, 200, mode, 10))


def test_twisted_sets_refuse_what_they_cannot_draw():
  with pytest.raises(ValueError, match="fewer than"):
    twisted_initial_mask(jax.random.key(0), Y, 900, "twisted_rare", 10, minor_fraction=0.0)
  with pytest.raises(ValueError, match="initial set must be one of"):
    InitialSet("twisted").validate()
  with pytest.raises(ValueError, match="minor_fraction"):
    InitialSet("twisted_main", 1.5).validate()


@pytest.fixture(scope="module")
def digits():
  return jal.data.load("digits")


def test_loop_draws_and_records_the_initial_set(digits):
  net = jal.make_net("mlp", digits.x_train.shape[1:], 10, hidden=(8,))
  tc, loop = jal.TrainConfig(epochs=1), jal.LoopConfig(init_size=40, budget=5, rounds=1)
  strategy = jal.get_strategy("random")
  twisted = InitialSet("twisted_rare", 0.1)
  h = jal.run_loop(jax.random.key(0), digits, net, tc, strategy, loop, verbose=False,
                   initial_set=twisted)
  main, rare = main_and_rare_classes(digits.y_train, 10)
  counts = np.asarray(h.rounds[0]["class_counts"])
  assert counts[main].sum() == 4 and counts[rare].sum() == 36
  assert h.config["initial_set"] == {"mode": "twisted_rare", "minor_fraction": 0.1}
  # The default keeps the uniform set of jal.initial_mask and the record of older runs.
  plain = jal.run_loop(jax.random.key(0), digits, net, tc, strategy, loop, verbose=False,
                       initial_set=InitialSet())
  want = jal.initial_mask(jax.random.split(jax.random.key(0))[0], len(digits.y_train), 40)
  assert plain.rounds[0]["class_counts"] == np.bincount(digits.y_train[want], minlength=10).tolist()
  assert "initial_set" not in plain.config


def test_config_reaches_the_loop():
  c = configs.get("smoke")
  assert build.initial_set(c) == InitialSet()
  c.loop.initial_set, c.loop.initial_minor_fraction = "twisted_main", 0.2
  assert build.initial_set(c) == InitialSet("twisted_main", 0.2)
  c.loop.initial_set = "skewed"
  with pytest.raises(ValueError, match="initial set must be one of"):
    build.initial_set(c)
