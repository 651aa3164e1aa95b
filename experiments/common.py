"""Builds the library objects an experiment config describes (shared by the binaries)."""

import inspect
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable

import jax
from absl import flags

import jal
from experiments import configs
from jal import parallel

__all__ = ["main_guard", "load_data", "build", "train_config", "loop_config", "FLAG_KEYS", "run",
           "resolve_config", "run_key", "mesh_from_flags", "enable_compilation_cache",
           "compilation_cache_from_flags"]

# Scale-out flags shared by every binary (allow_override: tests import several binaries).
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Call jax.distributed.initialize() first (multi-host; default: env "
    "JAL_DISTRIBUTED=1). Only process 0 writes files and logs.", allow_override=True)
_NUM_DEVICES = flags.DEFINE_integer(
    "num_devices", None, "Shard pool and minibatches over a 'data' mesh of this many devices "
    "(-1 = all devices, of every host); unset = one device, no mesh.", allow_override=True)

_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None, "Directory of JAX's persistent compilation cache: programs "
    "compiled once are reused by later runs (other seeds, strategies, reruns). Default: env "
    "JAL_COMPILATION_CACHE, else ~/.cache/jal/xla; '' disables it.", allow_override=True)


def enable_compilation_cache(path: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache in ``path`` (see ``--compilation_cache``).

  Returns:
    The directory used, or ``None`` when disabled (``path == ""``).
  """
  if path is None:
    path = os.environ.get("JAL_COMPILATION_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "jal", "xla"))
  if not path:
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  # Only programs worth caching: a cache read costs ~0.1 s.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path


def compilation_cache_from_flags() -> str | None:
  """:func:`enable_compilation_cache` with ``--compilation_cache`` (call before compiling)."""
  return enable_compilation_cache(_COMPILATION_CACHE.value)


def mesh_from_flags():
  """The ``data`` mesh asked for by ``--num_devices`` (``None`` when unset)."""
  n = _NUM_DEVICES.value
  if n is None:
    return None
  return parallel.make_mesh(None if n < 0 else n)

# Config keys a binary may override from the command line.
FLAG_KEYS = ("dataset", "model", "strategy", "seed", "init_size", "budget", "rounds",
             "epochs", "batch_size", "learning_rate", "dropout", "chunk_size", "stop_train_acc")


def load_data(config: dict, data_dir: str | None = None) -> jal.data.Dataset:
  """Loads ``config['dataset']`` (val split from ``config['val_size']`` if given)."""
  kw = {"seed": int(config.get("data_seed", 0))}
  if config.get("val_size") is not None:
    kw["val_size"] = int(config["val_size"])
  data = jal.data.load(config["dataset"], data_dir=data_dir, **kw)
  transform = dict(config.get("train_transform") or {})
  if transform:
    name = transform.pop("name")
    if name not in TRAIN_TRANSFORMS:
      raise ValueError(f"unknown train_transform {name!r}; choose from {sorted(TRAIN_TRANSFORMS)}")
    data = jal.data.apply_to_train(data, indices=TRAIN_TRANSFORMS[name](data.y_train, **transform))
  return data


# Methods whose target model is trained with SuperLoss (BRAL-T §4.1 curriculum learning) when
# a config says ``superloss="auto"``; baselines and the "w/o CL" ablation train with plain CE.
CURRICULUM_STRATEGIES = ("bral_t", "bral_diffset", "pseudo_score", "gradnd_gt")

# Train-split transforms a config may name in ``train_transform`` (CIFAR10-imb, CIFAR-LT).
TRAIN_TRANSFORMS = {
    "keep_probability_imbalance": jal.data.keep_probability_imbalance,
    "long_tail": jal.data.long_tail,
}


def uses_superloss(config: dict) -> bool:
  """Whether the target model of ``config`` trains with SuperLoss."""
  sl = config.get("superloss", False)
  if sl == "auto":
    return config["strategy"] in CURRICULUM_STRATEGIES
  return bool(sl)


def train_config(config: dict) -> jal.TrainConfig:
  """The ``TrainConfig`` of a config dict."""
  tau = config.get("superloss_tau")
  return jal.TrainConfig(
      epochs=int(config["epochs"]), batch_size=int(config["batch_size"]),
      learning_rate=float(config["learning_rate"]), optimizer=config["optimizer"],
      stop_train_acc=config.get("stop_train_acc"), superloss=uses_superloss(config),
      superloss_tau=None if tau is None else float(tau),
      superloss_lam=float(config.get("superloss_lam", 1.0)),
      augment=config.get("augment", "none"))


def strategy_kwargs(config: dict) -> dict:
  """The ``strategy_kwargs`` of ``config`` that its strategy's constructor accepts, so one
  protocol config can drive BRAL-T and the baselines it is compared with."""
  kwargs = dict(config.get("strategy_kwargs") or {})
  if config["strategy"] not in jal.STRATEGIES:
    raise ValueError(f"unknown strategy {config['strategy']!r}; choose from "
                     f"{sorted(jal.STRATEGIES)}")
  params = inspect.signature(jal.STRATEGIES[config["strategy"]]).parameters
  if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
    params = inspect.signature(jal.bralt.bral_t_strategy).parameters  # BRAL-T's ablations
  if "env" in params:  # BRAL-T's environment settings go in one EnvConfig
    env = {k: kwargs.pop(k) for k in list(kwargs) if k in jal.bralt.env.EnvConfig._fields}
    kwargs["env"] = {**dict(kwargs.get("env") or {}), **env}
  return {k: v for k, v in kwargs.items() if k in params}


def loop_config(config: dict) -> jal.LoopConfig:
  """The ``LoopConfig`` of a config dict."""
  return jal.LoopConfig(init_size=int(config["init_size"]), budget=int(config["budget"]),
                        rounds=int(config["rounds"]), chunk_size=int(config["chunk_size"]))


def build(config: dict, data: jal.data.Dataset):
  """``(net, strategy)`` for a config; BALD gets dropout 0.25 unless one is set."""
  dropout = float(config.get("dropout") or 0.0)
  if config["strategy"] == "bald" and dropout <= 0:
    dropout = 0.25
    print("bald needs MC dropout: building the model with dropout=0.25", flush=True)
  net = jal.make_net(config["model"], data.x_train.shape[1:], data.num_classes,
                     dropout=dropout, **dict(config.get("model_kwargs") or {}))
  return net, jal.get_strategy(config["strategy"], **strategy_kwargs(config))


def run_key(config: dict) -> jax.Array:
  return jax.random.key(int(config["seed"]))


def resolve_config(name: str, overrides: dict) -> dict:
  """Config ``name`` with the non-None ``overrides`` applied."""
  config = configs.get(name)
  unknown = set(overrides) - set(FLAG_KEYS)
  if unknown:
    raise ValueError(f"unknown config keys {sorted(unknown)}")
  config.update({k: v for k, v in overrides.items() if v is not None})
  return config


def run(config: dict, workdir: str, data_dir: str | None = None, verbose: bool = True,
        mesh=None) -> dict:
  """Runs the experiment of ``config`` in ``workdir``; returns the ``history.json`` dict.

  With a ``mesh`` the loop runs sharded (``jal.run_loop(..., mesh=...)``); under multi-host
  JAX only process 0 prints and writes ``workdir``.
  """
  t0 = time.perf_counter()
  verbose = verbose and parallel.is_main_process()
  data = load_data(config, data_dir)
  net, strategy = build(config, data)
  if parallel.is_multiprocess_mesh(mesh):
    # Each process keeps only its rows of the pool images (the file itself was read and
    # standardised whole); labels [n] and the test set stay whole on every host.
    data = data._replace(x_train=parallel.process_pool((data.x_train,), mesh)[0])
  if verbose:
    print(f"{data.name}: pool {data.y_train.shape[0]}, test {data.x_test.shape[0]}, "
          f"{data.num_classes} classes; model {net.name}; strategy {strategy.name}", flush=True)
  history = jal.run_loop(
      run_key(config), data, net, train_config(config), strategy,
      loop_config(config), workdir=workdir, verbose=verbose, mesh=mesh,
      extra_config={"seed": int(config["seed"]), "dropout": net.dropout,
                    "strategy_kwargs": strategy_kwargs(config),
                    "train_transform": config.get("train_transform")})
  summary = history.summary()
  summary["wall_seconds"] = time.perf_counter() - t0
  path = pathlib.Path(workdir) / "history.json"
  if parallel.is_main_process():
    path.write_text(json.dumps(summary, indent=1))
  if verbose:
    print(f"AUBC {summary['aubc']:.4f}  F-acc {summary['f_acc']:.4f}  "
          f"({summary['wall_seconds']:.1f}s) -> {path}", flush=True)
  return summary


def main_guard(body: Callable[[], object]) -> Callable[[list[str]], None]:
  """An absl ``main`` running ``body``; bad flags or data end with a message, not a traceback."""
  def main(argv):
    del argv
    # Before any JAX computation: multi-host needs the coordinator first.
    parallel.maybe_initialize_distributed(_DISTRIBUTED.value)
    compilation_cache_from_flags()
    try:
      body()
    except (FileNotFoundError, ValueError) as e:
      sys.exit(f"error: {e}")
  return main
