"""The configs and their builder: every protocol builds exactly what the old dict configs did."""

import dataclasses
import importlib
import json
import pathlib

import jax
import numpy as np
import pytest

import jal
from experiments import build, configs
from jal.rambo import settings

# What the dict configs of commit 24b1f8f built (experiments.common / experiments.one_round):
# TrainConfig, LoopConfig, strategy kwargs, RamboConfig, data and model settings, for every
# config as is and with other strategies (superloss "auto" and BALD's dropout rules).
_OLD = json.loads((pathlib.Path(__file__).parent / "old_config_values.json").read_text())


def _built(key: str) -> dict:
  name, _, variant = key.partition("[")
  c = configs.get(name)
  if variant:
    c.strategy.name = variant.rstrip("]").split("=")[1]
  got = {"seed": c.seed, "train": dataclasses.asdict(build.train_config(c)),
         "dataset": c.data.name, "val_size": c.data.val_size, "data_seed": c.data.seed,
         "train_transform": build.train_transform_record(c), "model": c.model.name,
         "model_kwargs": c.model.kwargs.to_dict(), "strategy": c.strategy.name,
         "dropout": build.dropout(c)}
  if c.binary == "one_round":
    got["rambo"] = dataclasses.asdict(build.rambo_config(c))
    got["pool"] = c.data.pool.to_dict()
  else:
    got["loop"] = dataclasses.asdict(build.loop_config(c))
    kwargs = build.strategy_kwargs(c)
    got["strategy_kwargs"] = {**kwargs.pop("env", {}), **kwargs}  # BRAL-T: EnvConfig fields
  return json.loads(json.dumps(got))  # tuples as lists, as recorded


@pytest.mark.parametrize("key", sorted(_OLD))
def test_config_builds_what_the_old_dict_config_built(key):
  assert _built(key) == _OLD[key]


def test_every_old_config_is_covered_and_families_are_known():
  old_names = {k.partition("[")[0] for k in _OLD}
  assert old_names <= set(configs.names())
  for name in configs.names():
    c = configs.get(name)
    assert c.binary in configs.FAMILIES, name
    assert name in configs.names(c.binary)
  assert {"default", "smoke", "bralt_digits"} <= set(configs.names("al"))
  assert {"rambo_digits", "rambo_smoke"} <= set(configs.names("one_round"))
  with pytest.raises(ValueError, match="unknown config"):
    configs.get("nope")


def test_config_of_another_family_is_refused():
  build.check_binary(configs.get("smoke"), "compare")
  build.check_binary(configs.get("rambo_smoke"), "rambo_tables")
  with pytest.raises(ValueError, match=r"binary='one_round'.*not experiments\.al"):
    build.check_binary(configs.get("rambo_mnist"), "al")
  with pytest.raises(ValueError, match="not experiments.one_round"):
    build.check_binary(configs.get("smoke"), "one_round")


@pytest.mark.parametrize("name", ["fmnist_reduced", "table5_fashion_mnist", "table5_emnist",
                                  "table5_cifar10", "table5_cifar100", "table5_cifar10_imb",
                                  "table5_cifar10_lt", "table5_cifar100_lt"])
def test_bralt_configs_build_strategies(name):
  config = configs.get(f"bralt_{name}")
  assert build.strategy(config).name == "bral_t" and build.uses_superloss(config)
  config.strategy.name = "random"  # the same protocol drives the baselines, without SuperLoss
  assert build.strategy(config).name == "random" and not build.uses_superloss(config)


def test_superloss_values():
  c = configs.get("smoke")
  for value, want in (("auto", False), ("true", True), ("false", False), ("on", True)):
    c.train.superloss = value
    assert build.uses_superloss(c) is want
  c.train.superloss = "sometimes"
  with pytest.raises(ValueError, match="superloss"):
    build.uses_superloss(c)


# ----------------------------------------------------------------------------- data section


@pytest.fixture(scope="module")
def digits():
  return jal.data.load("digits")


def _smoke(**transform):
  c = configs.get("smoke")
  c.data.train_transform.update(transform)
  return c


def test_every_train_transform_is_reachable(digits):
  y = digits.y_train
  got = build.load_data(_smoke(name="long_tail", imbalance_ratio=10.0, seed=3))
  np.testing.assert_array_equal(got.y_train, y[jal.data.long_tail(y, 10.0, 3)])
  got = build.load_data(_smoke(name="keep_probability_imbalance", seed=4666))
  np.testing.assert_array_equal(got.y_train, y[jal.data.keep_probability_imbalance(y, 4666)])
  got = build.load_data(_smoke(name="keep_probability_imbalance", probs=(0.5,) * 10))
  np.testing.assert_array_equal(
      got.y_train, y[jal.data.keep_probability_imbalance(y, 0, probs=[0.5] * 10)])
  got = build.load_data(_smoke(name="class_imbalance", mode="keep", seed=1))
  keep = jal.data.class_imbalance(y, 10, 1, 0.3, 0.2, "keep").indices
  np.testing.assert_array_equal(got.y_train, y[keep])
  got = build.load_data(_smoke(name="noisy_labels", fraction=0.3, seed=2))
  np.testing.assert_array_equal(got.y_train, jal.data.noisy_labels(y, 10, 0.3, 2))
  np.testing.assert_array_equal(got.x_train, digits.x_train)
  assert set(build.TRAIN_TRANSFORMS) | {"none"} == set(configs.base.TRAIN_TRANSFORMS)
  with pytest.raises(ValueError, match="train_transform"):
    build.load_data(_smoke(name="halve"))


def test_pool_settings_keep_the_old_r8_keys(digits):
  c = configs.get("rambo_smoke")
  assert build.apply_pool_settings(c, digits) is digits  # REC: no R8 setting
  c.data.pool.update(imbalance="keep_only", noise_rate=0.2)
  got = build.apply_pool_settings(c, digits)
  k_imb, k_noise = jax.random.split(jax.random.fold_in(jax.random.key(0), 0x5E77))
  want = settings.noisy_pool(k_noise, settings.imbalanced_pool(k_imb, digits, 0.3, 0.2,
                                                               keep_only=True), 0.2)
  np.testing.assert_array_equal(got.x_train, want.x_train)
  np.testing.assert_array_equal(got.y_train, want.y_train)
  np.testing.assert_array_equal(got.y_val, digits.y_val)
  other = build.apply_pool_settings(c, digits, seed=1)  # rambo_tables: per trial seed
  assert not np.array_equal(other.y_train[:100], got.y_train[:100])
  # The AL family reads the same section.
  al = configs.get("smoke")
  al.data.pool.noise_rate = 0.2
  assert int(np.sum(build.dataset(al).y_train != digits.y_train)) == round(
      0.2 * digits.y_train.shape[0])
  c.data.pool.imbalance = "half"
  with pytest.raises(ValueError, match="imbalance"):
    build.apply_pool_settings(c, digits)


def test_one_builder_for_the_net(digits):
  c = configs.get("rambo_smoke")
  net = build.net(c, digits)  # model.kwargs reach every one-round binary (old bug)
  assert net.name == jal.make_net("mlp", digits.x_train.shape[1:], 10, hidden=(32,)).name
  c = configs.get("smoke")
  c.strategy.name = "bald"
  assert build.net(c, digits).dropout == 0.25
  c.model.dropout = 0.1
  assert build.net(c, digits).dropout == 0.1


def test_rambo_fields_reach_the_rambo_config():
  c = configs.get("rambo_smoke")
  c.rambo.utility.update(hypergrad="itd", ot=False, bilevel=False)
  c.rambo.update(aug_distance="sinkhorn", offline_in_d=True)
  cfg = build.rambo_config(c)
  assert cfg.utility.hypergrad == "itd" and cfg.utility.lam_ot == 0.0
  assert not cfg.utility.bilevel and cfg.aug_distance == "sinkhorn" and cfg.offline_in_d
  c.rambo.utility.hypergrad = "newton"
  with pytest.raises(ValueError, match="hypergrad"):
    build.rambo_config(c)
  c.rambo.utility.hypergrad = "cg"
  c.rambo.aug_distance = "cosine"
  with pytest.raises(ValueError, match="aug_distance"):
    build.rambo_config(c)


def test_configs_import_nothing_heavy():
  """Config files are plain data: ml_collections and other configs only."""
  for name in configs.names():
    src = (configs.CONFIG_DIR / f"{name}.py").read_text()
    for line in src.splitlines():
      if line.startswith(("import ", "from ")):
        assert line.startswith(("from experiments.configs", "from ml_collections")), (name, line)
  importlib.reload(configs)


def test_every_config_passes_validation():
  for family in configs.FAMILIES:
    for name in configs.names(family):
      build.validate(configs.get(name))


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "learning_rate", -1.0, r"learning_rate must be a finite number > 0, got -1"),
    ("train", "stop_train_acc", 1.5, r"stop_train_acc must lie in \[0, 1\]"),
    ("loop", "chunk_size", 0, r"chunk_size"),
    ("loop", "initial_set", "skewed", r"initial"),
    ("model", "dropout", 1.5, r"model: dropout must lie in \[0, 1\), got 1.5"),
    ("model", "name", "vgg", r"model: unknown model 'vgg'"),
    ("data", "val_size", -3, r"data.val_size must be >= 0"),
    ("strategy", "name", "bogus", r"unknown strategy 'bogus'"),
])
def test_validate_names_the_setting_and_its_range(section, key, value, message):
  """One place checks every section, before data is read; each message names the field."""
  config = configs.get("smoke")
  with config.unlocked():
    config[section][key] = value
  with pytest.raises(ValueError, match=message):
    build.validate(config)


def test_validate_names_a_model_option_the_model_does_not_take():
  config = configs.get("bralt_table5_fashion_mnist")  # resnet18 with kwargs.stem
  with config.unlocked():
    config.model.name = "mlp"
  with pytest.raises(ValueError, match=r"model: model 'mlp' takes no option 'stem'; "
                                       r"its options: \['dropout', 'hidden'\]"):
    build.validate(config)


@pytest.mark.parametrize("key, value, message", [
    ("budget", 0, r"budget"), ("utility.inner_steps", 0, r"inner_steps"),
    ("m_factor", 0, r"m_factor")])
def test_validate_checks_the_rambo_section(key, value, message):
  config = configs.get("rambo_smoke")
  section = config.rambo
  *head, last = key.split(".")
  for h in head:
    section = section[h]
  section[last] = value
  with pytest.raises(ValueError, match=message):
    build.validate(config)


def test_validate_checks_pool_settings():
  config = configs.get("rambo_smoke")
  config.data.pool.noise_rate = -0.3
  with pytest.raises(ValueError, match=r"data.pool.noise_rate must lie in \[0, 1\], got -0.3"):
    build.validate(config)
