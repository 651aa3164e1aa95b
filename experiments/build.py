"""Config → library objects: dataset (with its transforms), net, strategy, TrainConfig,
LoopConfig, RamboConfig. The one place where a config's keys are read (no flags here).

A config is an ``ml_collections.ConfigDict`` of ``experiments/configs`` (sections described
in ``experiments/configs/base.py``).
"""

import inspect

import jax
from ml_collections import ConfigDict

import jal
from experiments import configs
from jal.rambo import IMBALANCE_MODES, BilevelConfig, RamboConfig, imbalanced_pool, noisy_pool

__all__ = ["CURRICULUM_STRATEGIES", "SETTINGS_STREAM", "TRAIN_TRANSFORMS", "apply_pool_settings",
           "check_binary", "check_pool_settings", "dataset", "dropout", "initial_set",
           "load_data", "loop_config", "net", "pool_settings_active", "rambo_config", "run_key",
           "strategy", "strategy_kwargs",
           "train_config", "train_transform_record", "uses_superloss", "validate"]

# Methods whose target model is trained with SuperLoss (BRAL-T §4.1 curriculum learning) when
# a config says ``train.superloss = "auto"``; baselines and the "w/o CL" ablation use plain CE.
CURRICULUM_STRATEGIES = ("bral_t", "bral_diffset", "pseudo_score", "gradnd_gt")

# ``data.train_transform.name`` -> the jal.data transform of the train split.
TRAIN_TRANSFORMS = {
    "keep_probability_imbalance": jal.data.keep_probability_imbalance,
    "long_tail": jal.data.long_tail,
    "class_imbalance": jal.data.class_imbalance,
    "noisy_labels": jal.data.noisy_labels,
}

# fold_in constant of the per-trial pool settings (RAMBO R8): they share no stream with the
# trial's own key.
SETTINGS_STREAM = 0x5E77

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0", "")


def check_binary(config: ConfigDict, binary: str) -> None:
  """Raises ``ValueError`` unless ``config`` is of the family that ``binary`` runs.

  Args:
    config: a config.
    binary: the binary's module name under ``experiments`` (``"al"``, ``"bench.scaling"``).
  """
  family = config.get("binary")
  if family not in configs.FAMILIES:
    raise ValueError(f"the config has no valid 'binary' key (got {family!r}); expected one of "
                     f"{sorted(configs.FAMILIES)}")
  if binary not in configs.FAMILIES[family]:
    want = next(f for f, bins in configs.FAMILIES.items() if binary in bins)
    raise ValueError(
        f"this config is for {', '.join('experiments.' + b for b in configs.FAMILIES[family])} "
        f"(binary={family!r}), not experiments.{binary}; use one with binary={want!r}: "
        f"{', '.join(configs.names(want))}")


def validate(config: ConfigDict) -> None:
  """Checks every setting of ``config`` before any work: the one place the binaries call
  (``runtime.run``, right after :func:`check_binary`), before data is read or a workdir made.

  Each section is built into the library object that owns its rules — ``TrainConfig``,
  ``LoopConfig``, ``InitialSet``, the strategy's constructor, ``RamboConfig`` /
  ``BilevelConfig`` — so a range is written once, next to the field it constrains, and the
  message names the field and its allowed range. What needs the data (budgets against the
  pool size) is checked by ``LoopConfig.validate`` once the pool is known, still before the
  workdir is created.

  Raises:
    ValueError: the first setting out of range, named with its allowed range.
  """
  if "data" in config:
    if "pool" in config.data:
      check_pool_settings(config)
    if config.data.get("train_transform") is not None:
      _check_train_transform(config.data.train_transform.name)
    if config.data.get("val_size") is not None and int(config.data.val_size) < 0:
      raise ValueError(f"data.val_size must be >= 0 (or None), got {config.data.val_size}")
  if "model" in config and "name" in config.model:
    try:
      options = config.model.kwargs.to_dict() if "kwargs" in config.model else {}
      jal.models.net.check_model(config.model.name, config.model.get("dropout"), options)
    except ValueError as e:
      raise ValueError(f"model: {e}") from None
  if "train" in config:
    train_config(config)
  if "loop" in config:
    loop_config(config)
    initial_set(config)
  if "strategy" in config and config.get("binary") == "al":
    strategy(config)
  if "rambo" in config:
    rambo_config(config)


# ----------------------------------------------------------------------------- data


def _transform_kwargs(fn, section: ConfigDict) -> dict:
  """The keys of ``section`` that ``fn`` takes, ``None`` values left to ``fn``'s defaults."""
  params = inspect.signature(fn).parameters
  return {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in section.items()
          if k in params and k != "name" and v is not None}


def _check_train_transform(name: str) -> None:
  if name != "none" and name not in TRAIN_TRANSFORMS:
    raise ValueError(f"unknown data.train_transform.name {name!r}; choose from "
                     f"{['none', *TRAIN_TRANSFORMS]}")


def _train_transform(config: ConfigDict, data: jal.data.Dataset) -> jal.data.Dataset:
  tt = config.data.train_transform
  _check_train_transform(tt.name)
  if tt.name == "none":
    return data
  fn = TRAIN_TRANSFORMS[tt.name]
  kwargs = _transform_kwargs(fn, tt)
  if "num_classes" in inspect.signature(fn).parameters and inspect.signature(fn).parameters[
      "num_classes"].default is inspect.Parameter.empty:
    kwargs["num_classes"] = data.num_classes
  out = fn(data.y_train, **kwargs)
  if tt.name == "noisy_labels":
    return jal.data.apply_to_train(data, labels=out)
  if isinstance(out, jal.data.ClassImbalance):
    out = out.indices
  return jal.data.apply_to_train(data, indices=out)


def train_transform_record(config: ConfigDict) -> dict | None:
  """The train transform as recorded in a run's settings (``None`` when there is none)."""
  tt = config.data.train_transform
  if tt.name == "none":
    return None
  fn = TRAIN_TRANSFORMS.get(tt.name)
  return {"name": tt.name, **(_transform_kwargs(fn, tt) if fn else {})}


def load_data(config: ConfigDict, data_dir: str | None = None) -> jal.data.Dataset:
  """``config.data``'s dataset with its train transform (not the per-trial pool settings).

  Raises:
    FileNotFoundError: when the dataset is missing (also for tfds / TensorFlow failures).
    ValueError: for an unknown dataset or transform.
  """
  d = config.data
  kw = {"seed": int(d.seed)}
  if d.val_size is not None:
    kw["val_size"] = int(d.val_size)
  try:
    data = jal.data.load(d.name, data_dir=data_dir, **kw)
  except (ValueError, FileNotFoundError):
    raise
  except Exception as e:  # tfds/TensorFlow missing or dataset not prepared
    raise FileNotFoundError(
        f"dataset {d.name!r} could not be loaded ({type(e).__name__}: {e}); prepare it with "
        "tensorflow-datasets (tfds build) and pass --data_dir") from e
  return _train_transform(config, data)


def pool_settings_active(config: ConfigDict) -> bool:
  """Whether ``config.data.pool`` changes the pool."""
  p = config.data.pool
  return p.imbalance != "none" or float(p.noise_rate) > 0


def check_pool_settings(config: ConfigDict) -> None:
  """Raises ``ValueError`` unless ``config.data.pool``'s settings are in range."""
  p = config.data.pool
  if p.imbalance not in IMBALANCE_MODES:
    raise ValueError(f"data.pool.imbalance must be one of {IMBALANCE_MODES}, "
                     f"got {p.imbalance!r}")
  for name in ("noise_rate", "imbalance_classes", "imbalance_fraction"):
    if not 0.0 <= float(p[name]) <= 1.0:
      raise ValueError(f"data.pool.{name} must lie in [0, 1], got {p[name]}")


def apply_pool_settings(config: ConfigDict, data: jal.data.Dataset,
                        seed: int | None = None) -> jal.data.Dataset:
  """``config.data.pool`` (RAMBO's R8 settings) applied to the pool of ``data``.

  Imbalance (``imbalance`` in ``IMBALANCE_MODES``, ``imbalance_classes``,
  ``imbalance_fraction``) first, then label noise (``noise_rate``), each from its own key
  derived from the trial ``seed`` (default ``config.seed``); val/test stay clean.
  """
  check_pool_settings(config)
  p = config.data.pool
  seed = int(config.seed) if seed is None else int(seed)
  k_imb, k_noise = jax.random.split(jax.random.fold_in(jax.random.key(seed), SETTINGS_STREAM))
  if p.imbalance != "none":
    data = imbalanced_pool(k_imb, data, float(p.imbalance_classes),
                           float(p.imbalance_fraction), keep_only=p.imbalance == "keep_only")
  if float(p.noise_rate) > 0:
    data = noisy_pool(k_noise, data, float(p.noise_rate))
  return data


def dataset(config: ConfigDict, data_dir: str | None = None) -> jal.data.Dataset:
  """:func:`load_data` then :func:`apply_pool_settings` for ``config.seed``."""
  return apply_pool_settings(config, load_data(config, data_dir))


# ----------------------------------------------------------------------------- model, training


def uses_superloss(config: ConfigDict) -> bool:
  """Whether the target model trains with SuperLoss (``"auto"``: curriculum methods only)."""
  sl = config.train.superloss
  if isinstance(sl, bool):
    return sl
  sl = str(sl).strip().lower()
  if sl == "auto":
    return config.strategy.name in CURRICULUM_STRATEGIES
  if sl in _TRUE or sl in _FALSE:
    return sl in _TRUE
  raise ValueError(f"train.superloss must be auto, true or false, got {sl!r}")


def train_config(config: ConfigDict) -> jal.TrainConfig:
  """The ``TrainConfig`` of ``config.train``."""
  t = config.train
  return jal.TrainConfig(
      epochs=int(t.epochs), batch_size=int(t.batch_size), learning_rate=float(t.learning_rate),
      optimizer=t.optimizer,
      stop_train_acc=None if t.stop_train_acc is None else float(t.stop_train_acc),
      superloss=uses_superloss(config),
      superloss_tau=None if t.superloss_tau is None else float(t.superloss_tau),
      superloss_lam=float(t.superloss_lam), augment=t.augment)


def loop_config(config: ConfigDict) -> jal.LoopConfig:
  """The ``LoopConfig`` of ``config.loop``."""
  lo = config.loop
  return jal.LoopConfig(init_size=int(lo.init_size), budget=int(lo.budget),
                        rounds=int(lo.rounds), chunk_size=int(lo.chunk_size))


def initial_set(config: ConfigDict) -> jal.data.InitialSet:
  """How ``L₀`` is drawn (``loop.initial_set``, ``loop.initial_minor_fraction``; uniform when
  a config has neither)."""
  lo = config.loop
  return jal.data.InitialSet(str(lo.get("initial_set", "random")),
                             float(lo.get("initial_minor_fraction", 0.05))).validate()


def dropout(config: ConfigDict) -> float:
  """``model.dropout``; BALD needs MC dropout and gets 0.25 when it is unset (0)."""
  rate = float(config.model.get("dropout") or 0.0)
  if config.strategy.name == "bald" and rate <= 0:
    return 0.25
  return rate


def net(config: ConfigDict, data: jal.data.Dataset, verbose: bool = False) -> jal.Net:
  """The target network of ``config.model`` for ``data``'s shapes."""
  rate = dropout(config)
  if verbose and rate != float(config.model.get("dropout") or 0.0):
    print(f"{config.strategy.name} needs MC dropout: building the model with dropout={rate}",
          flush=True)
  kwargs = config.model.kwargs.to_dict() if "kwargs" in config.model else {}
  return jal.make_net(config.model.name, data.x_train.shape[1:], data.num_classes,
                      dropout=rate, **kwargs)


def strategy_kwargs(config: ConfigDict) -> dict:
  """The ``strategy.kwargs`` that the strategy's constructor accepts, so one protocol config
  drives BRAL-T and its baselines; BRAL-T's ``EnvConfig`` fields are grouped under ``env``
  (its ablations, which take ``**kwargs``, accept ``bral_t_strategy``'s arguments). ``None``
  values are left out (the constructor's default)."""
  name = config.strategy.name
  if name not in jal.STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; choose from {sorted(jal.STRATEGIES)}")
  kwargs = config.strategy.kwargs.to_dict() if "kwargs" in config.strategy else {}
  kwargs = {k: v for k, v in kwargs.items() if v is not None}
  params = inspect.signature(jal.STRATEGIES[name]).parameters
  if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
    params = inspect.signature(jal.bralt.bral_t_strategy).parameters  # BRAL-T's ablations
  if "env" in params:  # BRAL-T's environment settings go in one EnvConfig
    env = {k: kwargs.pop(k) for k in list(kwargs) if k in jal.bralt.env.EnvConfig._fields}
    kwargs["env"] = {**dict(kwargs.get("env") or {}), **env}
  return {k: v for k, v in kwargs.items() if k in params}


def strategy(config: ConfigDict) -> jal.Strategy:
  """The query strategy of ``config.strategy`` (``"al"`` family)."""
  return jal.get_strategy(config.strategy.name, **strategy_kwargs(config))


def run_key(config: ConfigDict) -> jax.Array:
  """The PRNG key of the run / trial."""
  return jax.random.key(int(config.seed))


# ----------------------------------------------------------------------------- RAMBO


def rambo_config(config: ConfigDict) -> RamboConfig:
  """The ``RamboConfig`` of ``config.rambo`` (``"one_round"`` family)."""
  r, u = config.rambo, config.rambo.utility
  utility = BilevelConfig(bilevel=bool(u.bilevel), outer_steps=int(u.outer_steps),
                          inner_steps=int(u.inner_steps), cg_steps=int(u.cg_steps),
                          hypergrad=str(u.hypergrad), lam_ot=1.0 if u.ot else 0.0,
                          ranknet=bool(u.ranknet))
  return RamboConfig(k=int(r.k), budget=int(r.budget), k1=int(r.k1), b=int(r.b),
                     n_aug=int(r.n_aug), offline_pairs=int(r.offline_pairs),
                     offline_steps=int(r.offline_steps), m_factor=int(r.m_factor),
                     aug_from_next=bool(r.aug_from_next), fit_chunk=int(r.fit_chunk),
                     extractor=r.extractor, utility=utility,
                     dulo_candidates=int(r.dulo_candidates), ot_debiased=bool(r.ot_debiased),
                     aug_distance=str(r.aug_distance), offline_in_d=bool(r.offline_in_d))
