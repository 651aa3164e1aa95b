r"""One-round (non-adaptive) acquisition: RAMBO, DULO or a jal baseline; writes ``result.json``.

  python -m experiments.one_round --dataset=digits --strategy=rambo --workdir=/tmp/one_round
  python -m experiments.one_round --config=rambo_mnist --data_dir=/work/shared/data \
      --budget=700 --bilevel=false --workdir=/tmp/rambo_mnist_b700_nobilevel

Flags left unset take the value of ``--config``. ``--bilevel``, ``--ot`` and ``--ranknet``
select the 8 ablation rows of RAMBO's Tables 3/4. ``--hypergrad`` (SPEC §2.4: cg, custom_root,
itd) and ``--aug_distance`` (R5: euclidean, sinkhorn) are the flags of the REC readings;
``--noise_rate`` and ``--imbalance`` (R8) change the pool after loading, before S0 is drawn.
"""

import dataclasses
import json
import pathlib
import sys
import time

import jax
import numpy as np
from absl import app, flags

import jal
from experiments import common
from experiments.configs import rambo_cifar10, rambo_fmnist, rambo_mnist, rambo_smoke, rambo_svhn
from jal.rambo import (
  AUG_DISTANCES,
  HYPERGRADS,
  IMBALANCE_MODES,
  BilevelConfig,
  RamboConfig,
  imbalanced_pool,
  noisy_pool,
  run_one_round,
)

__all__ = ["CONFIGS", "OVERRIDES", "resolve", "rambo_config", "apply_settings", "run"]

CONFIGS = {"rambo_mnist": rambo_mnist, "rambo_fmnist": rambo_fmnist,
           "rambo_cifar10": rambo_cifar10, "rambo_svhn": rambo_svhn, "rambo_smoke": rambo_smoke}

# allow_override: the test suite imports several binaries into one process.
_CONFIG = flags.DEFINE_enum("config", "rambo_smoke", sorted(CONFIGS), "Protocol to start from.",
    allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_one_round", "Output directory.",
    allow_override=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX/tfds data dir (default: $JAL_DATA_DIR).",
    allow_override=True)
flags.DEFINE_string("dataset", None, "digits, mnist, fashion_mnist, cifar10, svhn_cropped.",
    allow_override=True)
flags.DEFINE_string("model", None, "Classifier f: mlp, lenet or resnet18.", allow_override=True)
flags.DEFINE_enum("strategy", None,
                  ["rambo", "dulo", "null", "random", "margin", "badge", "coreset"],
                  "One-round strategy (null: greedy-margin without a utility model, the "
                  "control of RAMBO's).", allow_override=True)
flags.DEFINE_integer("seed", None, "Seed of the trial.", allow_override=True)
flags.DEFINE_integer("k", None, "|S0|, the initial labeled set.", allow_override=True)
flags.DEFINE_integer("budget", None, "B, points acquired in the one round.", allow_override=True)
flags.DEFINE_integer("offline_pairs", None, "Offline utility pairs (RAMBO/DULO).",
    allow_override=True)
flags.DEFINE_integer("offline_steps", None, "Full-batch steps fitting the offline utility model.",
    allow_override=True)
flags.DEFINE_integer("m_factor", None, "Greedy-margin M = m_factor * b.", allow_override=True)
flags.DEFINE_integer("fit_chunk", None, "Classifiers trained together by fit_many.",
    allow_override=True)
flags.DEFINE_integer("epochs", None, "Maximum classifier epochs.", allow_override=True)
flags.DEFINE_integer("outer_steps", None, "Bilevel outer steps per iteration.", allow_override=True)
flags.DEFINE_integer("inner_steps", None, "Bilevel inner steps T.", allow_override=True)
flags.DEFINE_enum("hypergrad", None, list(HYPERGRADS),
                  "Bilevel hypergradient: AID-CG, the same via lax.custom_root, or ITD.",
                  allow_override=True)
flags.DEFINE_enum("aug_distance", None, list(AUG_DISTANCES),
                  "Distance of Eq. 4: euclidean between pooled phi, or latent-space Sinkhorn.",
                  allow_override=True)
flags.DEFINE_float("noise_rate", None, "Noisy oracle (R8): fraction of pool labels flipped.",
                   allow_override=True)
flags.DEFINE_enum("imbalance", None, list(IMBALANCE_MODES),
                  "Class imbalance (R8): in imbalance_classes of the classes remove (or keep "
                  "only) imbalance_fraction of the pool instances.", allow_override=True)
flags.DEFINE_bool("bilevel", None, "Bilevel training of the utility model (ablation).",
    allow_override=True)
flags.DEFINE_bool("offline_in_d", None, "R7 alternative: keep the offline pairs in D during the "
                  "refinement (REC: they only warm-start the utility model).", allow_override=True)
flags.DEFINE_bool("ot", None, "OT auxiliary task, lambda_OT = 1 (ablation).", allow_override=True)
flags.DEFINE_bool("ranknet", None, "RankNet loss; false = regression MSE (ablation).",
    allow_override=True)

OVERRIDES = ("dataset", "model", "strategy", "seed", "k", "budget", "offline_pairs",
             "offline_steps", "m_factor",
             "fit_chunk", "epochs", "outer_steps", "inner_steps", "hypergrad", "aug_distance",
             "noise_rate", "imbalance", "bilevel", "ot", "ranknet", "offline_in_d")

# fold_in constant of the R8 draws: they share no stream with the trial's own key.
_SETTINGS_STREAM = 0x5E77


def resolve(name: str, overrides: dict) -> dict:
  """Config ``name`` with the non-None ``overrides`` applied."""
  if name not in CONFIGS:
    raise ValueError(f"unknown config {name!r}; choose from {sorted(CONFIGS)}")
  unknown = set(overrides) - set(OVERRIDES)
  if unknown:
    raise ValueError(f"unknown config keys {sorted(unknown)}")
  config = dict(CONFIGS[name].get_config())
  config.update({k: v for k, v in overrides.items() if v is not None})
  config["init_size"] = config["k"]
  return config


def rambo_config(c: dict) -> RamboConfig:
  """The ``RamboConfig`` of a config dict."""
  utility = BilevelConfig(bilevel=bool(c["bilevel"]), outer_steps=int(c["outer_steps"]),
                          inner_steps=int(c["inner_steps"]), cg_steps=int(c["cg_steps"]),
                          hypergrad=str(c["hypergrad"]),
                          lam_ot=1.0 if c["ot"] else 0.0, ranknet=bool(c["ranknet"]))
  return RamboConfig(k=int(c["k"]), budget=int(c["budget"]), k1=int(c["k1"]), b=int(c["b"]),
                     n_aug=int(c["n_aug"]), offline_pairs=int(c["offline_pairs"]),
                     offline_steps=int(c["offline_steps"]), m_factor=int(c["m_factor"]),
                     aug_from_next=bool(c["aug_from_next"]), fit_chunk=int(c["fit_chunk"]),
                     extractor=c["extractor"], utility=utility,
                     dulo_candidates=int(c["dulo_candidates"]),
                     ot_debiased=bool(c["ot_debiased"]), aug_distance=str(c["aug_distance"]),
                     offline_in_d=bool(c.get("offline_in_d", False)))


def apply_settings(config: dict, data: jal.data.Dataset, seed: int | None = None):
  """The R8 settings of ``config`` applied to the pool of ``data`` (val/test stay clean).

  Imbalance (``imbalance`` in ``IMBALANCE_MODES``, ``imbalance_classes``,
  ``imbalance_fraction``) first, then label noise (``noise_rate``), each from its own key
  derived from the trial ``seed`` (default ``config["seed"]``); S₀ is drawn afterwards.
  """
  mode = config["imbalance"]
  if mode not in IMBALANCE_MODES:
    raise ValueError(f"imbalance must be one of {IMBALANCE_MODES}, got {mode!r}")
  seed = int(config["seed"]) if seed is None else int(seed)
  k_imb, k_noise = jax.random.split(jax.random.fold_in(jax.random.key(seed), _SETTINGS_STREAM))
  if mode != "none":
    data = imbalanced_pool(k_imb, data, float(config["imbalance_classes"]),
                           float(config["imbalance_fraction"]), keep_only=mode == "keep_only")
  if float(config["noise_rate"]) > 0:
    data = noisy_pool(k_noise, data, float(config["noise_rate"]))
  return data


def _load(config: dict, data_dir: str | None) -> jal.data.Dataset:
  try:
    return common.load_data(config, data_dir)
  except (ValueError, FileNotFoundError):
    raise
  except Exception as e:  # tfds/TensorFlow missing or dataset not prepared
    raise FileNotFoundError(
        f"dataset {config['dataset']!r} could not be loaded ({type(e).__name__}: {e}); "
        "prepare it with tensorflow-datasets (tfds build) and pass --data_dir") from e


def setup_from_flags(settings: bool = True):
  """``(config, RamboConfig, data, net, TrainConfig)`` from this binary's flags, for the
  drivers that reuse them (``rambo_tables``, ``rambo_diagnose``); ``settings`` applies the R8
  settings for ``config["seed"]`` (a driver over several seeds calls ``apply_settings``)."""
  overrides = {k: flags.FLAGS[k].value for k in OVERRIDES}
  config = resolve(_CONFIG.value, overrides)
  cfg = rambo_config(config)
  data = _load(config, _DATA_DIR.value)
  if settings:
    data = apply_settings(config, data)
  net = jal.make_net(config["model"], data.x_train.shape[1:], data.num_classes)
  return config, cfg, data, net, common.train_config(config)


def run(config: dict, workdir: str, data_dir: str | None = None, verbose: bool = True) -> dict:
  """Runs one trial of ``config`` and writes ``workdir/result.json``; returns its dict."""
  t0 = time.perf_counter()
  cfg = rambo_config(config)
  data = apply_settings(config, _load(config, data_dir))
  net = jal.make_net(config["model"], data.x_train.shape[1:], data.num_classes,
                     **dict(config.get("model_kwargs") or {}))
  tc = common.train_config(config)
  if verbose:
    print(f"{data.name}: pool {data.x_train.shape[0]}, val {data.x_val.shape[0]}; f = {net.name}; "
          f"{config['strategy']} k={cfg.k} B={cfg.budget}", flush=True)
  res = run_one_round(jax.random.key(int(config["seed"])), data, net, tc, cfg,
                      config["strategy"], verbose=verbose)
  res["seconds"] = time.perf_counter() - t0
  res["pool_class_counts"] = np.bincount(data.y_train, minlength=data.num_classes).tolist()
  res["settings"] = {**{k: v for k, v in config.items() if k != "model_kwargs"},
                     "model_kwargs": {k: list(v) if isinstance(v, tuple) else v
                                      for k, v in dict(config.get("model_kwargs") or {}).items()},
                     "rambo": dataclasses.asdict(cfg), "device": jax.default_backend()}
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "result.json").write_text(json.dumps(res, indent=1, default=str))
  if verbose:
    print(f"val {res['val_accuracy']:.4f}  test {res['test_accuracy']:.4f}  "
          f"({res['seconds']:.1f}s) -> {out / 'result.json'}", flush=True)
  return res


def main(argv):
  del argv
  common.compilation_cache_from_flags()
  try:
    overrides = {k: flags.FLAGS[k].value for k in OVERRIDES}
    run(resolve(_CONFIG.value, overrides), _WORKDIR.value, _DATA_DIR.value)
  except (FileNotFoundError, ValueError) as e:  # bad flags or data: a message, not a traceback
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
