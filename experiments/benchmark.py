r"""Accelerator benchmark of jal: matmul GFLOP/s, score throughput, fit, AL round, fit_many.

  python -m experiments.benchmark --out=/tmp/bench.json
  python -m experiments.benchmark --sections=machine,scores
  python -m experiments.benchmark --protocol=deepal --deepal_rounds=1 --deepal_epochs=1 \
      --sections=

Prints one JSON object on stdout (progress goes to stderr) with the sections

* ``machine``: versions, backend, devices, CPU count and the measured float32 matmul GFLOP/s;
* ``scores``: EL2N and GraNd throughput of LeNet-5 and ResNet-18 (CIFAR stem);
* ``fit``: seconds per epoch of ``jal.fit`` (compile excluded);
* ``al_round``: one compile-free AL round (LeNet + Margin on MNIST) split into train / score /
  select;
* ``fit_many``: models/s of ``jal.fit_many`` for several ``K`` against sequential ``jal.fit``;
* ``deepal_protocol`` (``--protocol=deepal`` only): the DeepAL+ MNIST / ResNet-18 protocol of
  ``experiments/configs/deepal_mnist_resnet.py``, run through ``experiments.common`` and
  ``jal.run_loop``.

Sizes default to a few minutes on a small CPU and to larger problems on an accelerator; every
size has a flag. On CPU, ResNet-18 GraNd (per-example gradients of a ``vmap``ped convnet run at
about 1 example/s on two cores) and ``fit_many`` (``vmap`` over models is slower than a loop
there) default to small sizes: N = 16 and K = 1, 4.

Jittable work is compiled ahead of time (``jit(...).lower(...).compile()``), so compile seconds
are measured on their own, then run once untimed (``--warmup``) and timed; ``jal.fit`` (a
Python loop over a compiled epoch) is called once to compile and then timed.
"""

import contextlib
import dataclasses
import datetime
import functools
import json
import math
import os
import pathlib
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import jal
from experiments import common, configs

__all__ = [
    "SECTIONS", "Settings", "al_round_section", "deepal_protocol_section", "default_settings",
    "fit_many_section", "fit_section", "fit_throughput", "load_images", "machine_section",
    "matmul_gflops", "parse_sections", "run_benchmark", "score_throughput", "scores_section",
    "settings_from_flags", "synthetic_dataset", "time_call", "time_jit", "to_json",
]

SECTIONS = ("machine", "scores", "fit", "al_round", "fit_many")
_REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_DATA = _REPO.parent / "shared" / "data"
_SYNTHETIC_NOTE = ("synthetic N(0, 1) images with uniform random labels; the cost of a fixed "
                   "number of epochs / a pool pass does not depend on the pixel values")


# ----------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Settings:
  """Every size of the benchmark (see ``default_settings`` for the CPU / accelerator values).

  Attributes:
    matmul_n: side of the square float32 matmul.
    matmul_repeats: timed matmul runs (the best one is reported).
    warmup: untimed runs of an already compiled function before the timed ones.
    repeats: timed runs of the score functions (the best one is reported).
    el2n_n_lenet: examples scored by EL2N with LeNet-5.
    grand_n_lenet: examples scored by GraNd with LeNet-5.
    el2n_n_resnet: examples scored by EL2N with ResNet-18.
    grand_n_resnet: examples scored by GraNd with ResNet-18.
    el2n_chunk: EL2N chunk size (both models).
    grand_chunk_lenet: GraNd chunk size for LeNet-5.
    grand_chunk_resnet: GraNd chunk size for ResNet-18.
    resnet_input_shape: ``(H, W, C)`` of the ResNet-18 used by ``scores`` and ``fit``.
    resnet_stem: its stem (``"cifar"`` or ``"imagenet"``).
    fit_n_lenet: labeled examples of the LeNet-5 fit.
    fit_batch_lenet: its minibatch size.
    fit_epochs_lenet: epochs of the timed LeNet-5 fit.
    fit_n_resnet: labeled examples of the ResNet-18 fit.
    fit_batch_resnet: its minibatch size.
    fit_epochs_resnet: epochs of the timed ResNet-18 fit.
    al_init_size: ``|L|`` of the AL round.
    al_budget: points queried by the AL round.
    fit_many_ks: numbers of models trained at once.
    fit_many_subset: labeled examples per model.
    fit_many_epochs: epochs per model.
    fit_many_batch: minibatch size.
    fit_many_pool: pool the subsets are drawn from.
    fit_many_seq_k: sequential ``jal.fit`` calls timed for the comparison.
    deepal_rounds: query rounds of the DeepAL+ protocol.
    deepal_epochs: epochs per round of the DeepAL+ protocol.
    seed: seed of every synthetic array and model.
  """
  matmul_n: int = 2048
  matmul_repeats: int = 5
  warmup: int = 1
  repeats: int = 1
  el2n_n_lenet: int = 2048
  grand_n_lenet: int = 2048
  el2n_n_resnet: int = 256
  grand_n_resnet: int = 16
  el2n_chunk: int = 1024
  grand_chunk_lenet: int = 64
  grand_chunk_resnet: int = 16
  resnet_input_shape: tuple[int, int, int] = (28, 28, 1)
  resnet_stem: str = "cifar"
  fit_n_lenet: int = 1000
  fit_batch_lenet: int = 64
  fit_epochs_lenet: int = 3
  fit_n_resnet: int = 512
  fit_batch_resnet: int = 128
  fit_epochs_resnet: int = 1
  al_init_size: int = 100
  al_budget: int = 100
  fit_many_ks: tuple[int, ...] = (1, 4)
  fit_many_subset: int = 200
  fit_many_epochs: int = 20
  fit_many_batch: int = 64
  fit_many_pool: int = 2048
  fit_many_seq_k: int = 2
  deepal_rounds: int = 5
  deepal_epochs: int = 20
  seed: int = 0


_ACCELERATOR_SETTINGS = {
    "matmul_n": 8192, "matmul_repeats": 10, "repeats": 3,
    "el2n_n_lenet": 65536, "grand_n_lenet": 16384, "el2n_n_resnet": 16384,
    "grand_n_resnet": 1024, "el2n_chunk": 4096, "grand_chunk_lenet": 1024,
    "grand_chunk_resnet": 64, "fit_epochs_lenet": 10, "fit_epochs_resnet": 5,
    "fit_n_resnet": 2048, "fit_many_ks": (1, 16, 64, 256), "fit_many_pool": 16384,
    "fit_many_seq_k": 4,
}


def default_settings(backend: str | None = None) -> Settings:
  """The default ``Settings`` for ``backend`` (``jax.default_backend()`` when ``None``).

  CPU gets sizes that keep the whole default benchmark within a few minutes on two cores;
  any other backend (gpu, tpu) gets problems large enough to keep the device busy.
  """
  backend = backend or jax.default_backend()
  if backend == "cpu":
    return Settings()
  return dataclasses.replace(Settings(), **_ACCELERATOR_SETTINGS)


def parse_sections(spec: str | Sequence[str]) -> tuple[str, ...]:
  """Parses ``"machine,scores"`` (or a list) into known section names, in ``SECTIONS`` order.

  Raises:
    ValueError: on an unknown name.
  """
  names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
  names = [s for s in names if s]
  unknown = sorted(set(names) - set(SECTIONS))
  if unknown:
    raise ValueError(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
  return tuple(s for s in SECTIONS if s in names)


# ----------------------------------------------------------------------------- measuring


def _log(msg: str) -> None:
  print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _stats(runs: list[float]) -> dict:
  return {"seconds": min(runs), "median_seconds": float(np.median(runs)),
          "runs_seconds": [float(r) for r in runs]}


def time_jit(fn: Callable[..., Any], *args, warmup: int = 1, repeats: int = 3) -> dict:
  """Compiles ``jax.jit(fn)`` for ``args`` ahead of time, then times blocking runs.

  Args:
    fn: a jittable function of ``args`` (closures over static objects are fine).
    *args: its arguments (arrays / pytrees).
    warmup: untimed runs of the compiled function before the timed ones.
    repeats: timed runs (≥ 1).

  Returns:
    ``{"compile_seconds", "seconds" (best run), "median_seconds", "runs_seconds"}``.
  """
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  for _ in range(warmup):
    jax.block_until_ready(compiled(*args))
  runs = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    runs.append(time.perf_counter() - t0)
  return {"compile_seconds": compile_s, **_stats(runs)}


def time_call(fn: Callable[[], Any], *, repeats: int = 1) -> dict:
  """Times ``fn()`` (blocking on its result): one first call, then ``repeats`` timed calls.

  For functions that are not jittable as a whole (``jal.fit``'s Python epoch loop): the first
  call compiles and the later ones are compile-free, so ``compile_seconds`` is estimated as
  first call minus best later call.

  Returns:
    ``{"first_call_seconds", "compile_seconds", "seconds", "median_seconds",
    "runs_seconds"}``.
  """
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - t0
  runs = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    runs.append(time.perf_counter() - t0)
  stats = _stats(runs)
  return {"first_call_seconds": first, "compile_seconds": max(first - stats["seconds"], 0.0),
          **stats}


def matmul_gflops(n: int, *, dtype=jnp.float32, precision: str | None = None,
                  warmup: int = 1, repeats: int = 5, seed: int = 0) -> dict:
  """Measured GFLOP/s of a jitted ``[n, n] @ [n, n]`` (2n³ flops, best of ``repeats``).

  Args:
    n: matrix side.
    dtype: element type.
    precision: ``None`` (the backend default; TF32 may be used for float32 on NVIDIA GPUs)
      or a ``jax.lax.Precision`` name such as ``"highest"``.
    warmup: untimed runs after compiling.
    repeats: timed runs.
    seed: seed of the random operands.

  Returns:
    ``{"n", "dtype", "precision", "gflops", "compile_seconds", "seconds", ...}``.
  """
  rng = np.random.default_rng(seed)
  a, b = (jnp.asarray(rng.standard_normal((n, n), dtype=np.float32), dtype) for _ in range(2))
  prec = None if precision is None else jax.lax.Precision[precision.upper()]
  t = time_jit(lambda u, v: jnp.matmul(u, v, precision=prec), a, b, warmup=warmup,
               repeats=repeats)
  return {"n": int(n), "dtype": jnp.dtype(dtype).name, "precision": precision or "default",
          "gflops": 2.0 * n ** 3 / t["seconds"] / 1e9, **t}


def _guarded(what: str, fn: Callable[..., dict], *args, **kwargs) -> dict:
  """Returns ``fn(*args, **kwargs)``; on an exception logs the traceback and returns
  ``{"error": "<type>: <first line>"}`` instead."""
  try:
    return fn(*args, **kwargs)
  except Exception as e:  # One failing measurement must not sink the rest.
    _log(f"{what} FAILED:\n{traceback.format_exc()}")
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return {"error": f"{type(e).__name__}: {first}"}


def _n_params(variables: jal.Variables) -> int:
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables.params)))


def _load() -> list[float]:
  return [round(v, 2) for v in os.getloadavg()]


# ----------------------------------------------------------------------------- data


def synthetic_dataset(n_train: int, n_test: int, shape: Sequence[int] = (28, 28, 1),
                      num_classes: int = 10, seed: int = 0,
                      name: str = "synthetic") -> jal.data.Dataset:
  """A ``Dataset`` of N(0, 1) images with uniform random labels (no validation split)."""
  rng = np.random.default_rng(seed)
  shape = tuple(int(s) for s in shape)
  x_tr = rng.standard_normal((n_train, *shape), dtype=np.float32)
  x_te = rng.standard_normal((n_test, *shape), dtype=np.float32)
  return jal.data.make_dataset(
      x_tr, rng.integers(0, num_classes, n_train), x_tr[:0], np.zeros(0, np.int32),
      x_te, rng.integers(0, num_classes, n_test), num_classes=num_classes, name=name)


def load_images(config: dict, data_dir: str | None = None) -> tuple[jal.data.Dataset, dict]:
  """Loads ``config``'s dataset through ``experiments.common``, or a synthetic stand-in.

  Directories are tried in order: ``data_dir``, ``$JAL_DATA_DIR``, the checkout's sibling
  ``shared/data``. When none holds the dataset, a synthetic dataset of the same shape
  (60 000 train minus ``val_size``, 10 000 test, 28×28×1, 10 classes) is returned.

  Returns:
    ``(dataset, info)`` with ``info = {"dataset", "source", "data_dir", "pool_size",
    "test_size", ...}``; ``source`` is ``"idx"`` or ``"synthetic"`` (then ``info["note"]``
    says why).
  """
  candidates = [data_dir, os.environ.get(jal.data.DATA_DIR_ENV), str(_SHARED_DATA)]
  errors = []
  for d in dict.fromkeys(c for c in candidates if c):
    try:
      data = common.load_data(config, d)
    except (FileNotFoundError, ValueError) as e:
      errors.append(f"{d}: {type(e).__name__}: {str(e).splitlines()[0]}")
      continue
    info = {"dataset": data.name, "source": "idx", "data_dir": d,
            "pool_size": int(data.x_train.shape[0]), "test_size": int(data.x_test.shape[0])}
    if errors:
      info["skipped_dirs"] = errors
    return data, info
  val = config.get("val_size")
  val = jal.data.DEFAULT_VAL_SIZE if val is None else int(val)
  data = synthetic_dataset(60000 - val, 10000, (28, 28, 1), 10, seed=0,
                           name=f"synthetic_{config['dataset']}")
  _log(f"{config['dataset']} not found ({'; '.join(errors) or 'no data directory'}); "
       "using synthetic data of the same shape")
  return data, {"dataset": data.name, "source": "synthetic", "data_dir": None,
                "pool_size": int(data.x_train.shape[0]), "test_size": int(data.x_test.shape[0]),
                "note": f"{config['dataset']} unavailable ({'; '.join(errors) or 'no data dir'})"
                        f": {_SYNTHETIC_NOTE}; accuracies (and epochs under stop_train_acc) "
                        "are not MNIST's"}


# ----------------------------------------------------------------------------- sections


def machine_section(matmul_n: int = 2048, matmul_repeats: int = 5, warmup: int = 1,
                    seed: int = 0) -> dict:
  """Software versions, devices, CPU count and measured float32 matmul GFLOP/s.

  Reports the backend-default precision and ``Precision.HIGHEST`` (they differ on GPUs where
  float32 matmuls may run in TF32).
  """
  devices = jax.devices()
  out = {
      "jax_version": jax.__version__, "jaxlib_version": _jaxlib_version(),
      "flax_version": flax.__version__, "optax_version": optax.__version__,
      "jal_version": jal.__version__, "python": platform.python_version(),
      "platform": platform.platform(), "backend": jax.default_backend(),
      "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
      "device_kinds": sorted({d.device_kind for d in devices}),
      "devices": [str(d) for d in devices], "cpu_count": os.cpu_count(),
      "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
      "loadavg": _load(),
  }
  stats = _memory_stats(devices[0])
  if stats:
    out["device_memory_bytes"] = stats
  for prec in (None, "highest"):
    key = "matmul" if prec is None else f"matmul_{prec}"
    _log(f"machine: float32 matmul n={matmul_n} precision={prec or 'default'}")
    out[key] = matmul_gflops(matmul_n, precision=prec, warmup=warmup, repeats=matmul_repeats,
                             seed=seed)
  return out


def _jaxlib_version() -> str | None:
  try:
    import jaxlib
    return jaxlib.__version__
  except (ImportError, AttributeError):
    return None


def _memory_stats(device) -> dict | None:
  try:
    stats = device.memory_stats()
  except Exception:  # CPU devices may not implement it.
    return None
  if not stats:
    return None
  return {k: int(v) for k, v in stats.items() if k in ("bytes_limit", "bytes_in_use",
                                                       "peak_bytes_in_use")}


def score_throughput(net: jal.Net, variables: jal.Variables, score: str, n: int,
                     chunk_size: int, *, input_shape: Sequence[int], warmup: int = 1,
                     repeats: int = 1, seed: int = 0) -> dict:
  """Examples/s of ``jal.scores.el2n`` or ``jal.scores.grand`` over ``n`` random inputs.

  The call is compiled ahead of time (``compile_seconds``), then run ``warmup`` times untimed
  and ``repeats`` times timed (best run reported).
  """
  fns = {"el2n": jal.scores.el2n, "grand": jal.scores.grand}
  if score not in fns:
    raise ValueError(f"score must be one of {sorted(fns)}, got {score!r}")
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((n, *input_shape), dtype=np.float32))
  y = jnp.asarray(rng.integers(0, net.num_classes, n), jnp.int32)
  fn = fns[score]
  t = time_jit(lambda v, xx, yy: fn(net, v, xx, yy, chunk_size), variables, x, y,
               warmup=warmup, repeats=repeats)
  return {"n": int(n), "chunk_size": int(min(chunk_size, n)),
          "examples_per_second": n / t["seconds"], **t}


def scores_section(models: Sequence[dict], *, warmup: int = 1, repeats: int = 1,
                   seed: int = 0) -> dict:
  """EL2N and GraNd throughput for each model spec.

  Args:
    models: dicts with ``name`` (key in the output), ``model`` (``jal.make_net`` name),
      ``input_shape``, ``kwargs`` (model options), ``el2n_n``, ``el2n_chunk``, ``grand_n``,
      ``grand_chunk``; an ``*_n`` of 0 skips that score (both 0: the model).
    warmup: untimed runs after compiling.
    repeats: timed runs.
    seed: seed of the model and the inputs.

  Returns:
    ``{name: {"model", "input_shape", "model_kwargs", "params", "el2n": {...},
    "grand": {...}}}`` plus a ``note``.
  """
  out = {"note": "random-init weights and N(0, 1) inputs (throughput does not depend on "
                 "them); BatchNorm in eval mode; best of the timed runs after AOT compile"}
  for spec in models:
    if int(spec.get("el2n_n", 0)) > 0 or int(spec.get("grand_n", 0)) > 0:
      out[spec["name"]] = _guarded(f"scores/{spec['name']}", _score_model, spec,
                                   warmup=warmup, repeats=repeats, seed=seed)
  return out


def _score_model(spec: dict, *, warmup: int, repeats: int, seed: int) -> dict:
  shape = tuple(int(s) for s in spec["input_shape"])
  kwargs = dict(spec.get("kwargs") or {})
  net = jal.make_net(spec["model"], shape, 10, **kwargs)
  t0 = time.perf_counter()
  variables = jax.block_until_ready(net.init(jax.random.key(seed)))
  res = {"model": spec["model"], "input_shape": list(shape), "model_kwargs": kwargs,
         "params": _n_params(variables), "eager_init_seconds": time.perf_counter() - t0}
  if spec["model"] == "resnet18" and shape[-1] == 1:
    res["grayscale_adapter"] = "1x1 conv 1->3 before the stem"
  for score in ("el2n", "grand"):
    n = int(spec.get(f"{score}_n", 0))
    if n <= 0:
      continue
    _log(f"scores: {spec['name']} {score} n={n} chunk={spec[f'{score}_chunk']}")
    res[score] = _guarded(f"scores/{spec['name']}/{score}", score_throughput, net, variables,
                          score, n, int(spec[f"{score}_chunk"]), input_shape=shape,
                          warmup=warmup, repeats=repeats, seed=seed)
    if "examples_per_second" in res[score]:
      _log(f"scores: {spec['name']} {score}: {res[score]['examples_per_second']:.1f} ex/s "
           f"(compile {res[score]['compile_seconds']:.1f}s)")
  return res


def fit_throughput(net: jal.Net, input_shape: Sequence[int], n_labeled: int, batch_size: int,
                   epochs: int, *, pool_size: int | None = None, seed: int = 0) -> dict:
  """Seconds per epoch of ``jal.fit`` on ``n_labeled`` labeled rows of a synthetic pool.

  ``fit`` is called twice with the same config and shapes; the first call compiles the
  epoch (``TrainConfig`` is a static argument, so a shorter warm-up fit would compile a
  different program) and the second is timed.

  Args:
    net: the network.
    input_shape: ``(H, W, C)``.
    n_labeled: labeled rows (``mask.sum()``).
    batch_size: minibatch size.
    epochs: epochs of each fit.
    pool_size: rows of the pool (default ``2 * n_labeled``: the mask marks half of it).
    seed: seed of data, mask and model.

  Returns:
    ``{"seconds_per_epoch", "seconds_per_step", "examples_per_second", ...}``.
  """
  pool_size = int(pool_size or 2 * n_labeled)
  data = synthetic_dataset(pool_size, 1, input_shape, net.num_classes, seed)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  mask = jnp.asarray(jal.initial_mask(jax.random.key(seed + 1), pool_size, n_labeled))
  config = jal.TrainConfig(epochs=epochs, batch_size=batch_size)
  key = jax.random.key(seed)
  t = time_call(lambda: jal.fit(key, net, config, x, y, mask).variables)
  steps = math.ceil(n_labeled / batch_size)
  return {"n_labeled": int(n_labeled), "pool_size": pool_size, "batch_size": int(batch_size),
          "epochs": int(epochs), "steps_per_epoch": steps,
          "seconds_per_epoch": t["seconds"] / epochs,
          "seconds_per_step": t["seconds"] / (epochs * steps),
          "examples_per_second": n_labeled * epochs / t["seconds"], **t}


def fit_section(models: Sequence[dict], *, seed: int = 0) -> dict:
  """``fit_throughput`` for each spec (``name``, ``model``, ``input_shape``, ``kwargs``,
  ``n``, ``batch_size``, ``epochs``); ``n = 0`` skips the model."""
  out = {"note": "Adam 1e-3, no augmentation; fit called twice with the same config and "
                 "shapes, the second (compile-free) call timed; " + _SYNTHETIC_NOTE}
  for spec in models:
    if int(spec["n"]) <= 0:
      continue
    shape = tuple(int(s) for s in spec["input_shape"])
    kwargs = dict(spec.get("kwargs") or {})
    net = jal.make_net(spec["model"], shape, 10, **kwargs)
    _log(f"fit: {spec['name']} n={spec['n']} batch={spec['batch_size']} "
         f"epochs={spec['epochs']} (x2: compile + timed)")
    res = _guarded(f"fit/{spec['name']}", fit_throughput, net, shape, int(spec["n"]),
                   int(spec["batch_size"]), int(spec["epochs"]), seed=seed)
    res = {"model": spec["model"], "input_shape": list(shape), "model_kwargs": kwargs, **res}
    if "seconds_per_epoch" in res:
      _log(f"fit: {spec['name']}: {res['seconds_per_epoch']:.3f} s/epoch "
           f"(compile ~{res['compile_seconds']:.1f}s)")
    out[spec["name"]] = res
  return out


def _round_walls(t_start: float, stamps: list[float]) -> list[float]:
  return list(np.diff([t_start, *stamps]))


def _round_record(rec: dict, wall: float) -> dict:
  query = rec["score_seconds"] + rec["select_seconds"]
  return {"round": rec["round"], "n_labeled": rec["n_labeled"],
          "test_accuracy": rec["test_accuracy"], "epochs": rec["epochs"],
          "train_seconds": rec["train_seconds"],
          "train_seconds_per_epoch": rec["train_seconds"] / max(rec["epochs"], 1),
          "score_seconds": rec["score_seconds"], "select_seconds": rec["select_seconds"],
          "query_seconds": query, "round_seconds": wall,
          "other_seconds": max(wall - rec["train_seconds"] - query, 0.0)}


def _run_protocol(config: dict, data: jal.data.Dataset):
  """``jal.run_loop`` on ``config`` built through ``experiments.common`` (no workdir).

  Returns:
    ``(history, per-round wall seconds, net)``; a round's wall time runs from the previous
    round's end (or the call) to its ``on_round`` and so includes the test-set evaluation.
  """
  net, strategy = common.build(config, data)
  stamps = []
  t0 = time.perf_counter()
  history = jal.run_loop(common.run_key(config), data, net, common.train_config(config),
                         strategy, common.loop_config(config), verbose=False,
                         on_round=lambda r, rec: stamps.append(time.perf_counter()))
  return history, _round_walls(t0, stamps), net


def al_round_section(data: jal.data.Dataset | None = None, *, data_dir: str | None = None,
                     init_size: int = 100, budget: int = 100, seed: int = 0) -> dict:
  """One compile-free AL round: LeNet-5 + Margin (``configs/mnist_lenet.py``), ``|L| = 100``.

  ``jal.run_loop`` (``rounds=1``) runs twice with the same seed: the first run compiles the
  fit, the test evaluation, the pool inference and the Margin pick; round 0 of the second run
  (``|L| = init_size``, train → score the pool → select ``budget``) is reported.

  Args:
    data: the dataset; ``None`` loads MNIST (``load_images``; synthetic if unavailable).
    data_dir: where to look for MNIST.
    init_size: ``|L|``.
    budget: points queried.
    seed: seed of the run.

  Returns:
    ``{"reported_round", "train_seconds", "score_seconds", "select_seconds", ...}``.
  """
  config = configs.get("mnist_lenet")
  config.update(init_size=int(init_size), budget=int(budget), rounds=1, seed=int(seed))
  if data is None:
    data, info = load_images(config, data_dir)
  else:
    info = {"dataset": data.name, "source": "given", "pool_size": int(data.x_train.shape[0]),
            "test_size": int(data.x_test.shape[0])}
  _log(f"al_round: warm-up run_loop on {data.name} (pool {data.x_train.shape[0]})")
  warm, warm_walls, net = _run_protocol(config, data)
  _log("al_round: timed run_loop")
  hist, walls, _ = _run_protocol(config, data)
  rec = _round_record(hist.rounds[0], walls[0])
  _log(f"al_round: train {rec['train_seconds']:.2f}s score {rec['score_seconds']:.2f}s "
       f"select {rec['select_seconds']:.3f}s")
  return {
      "data": info, "model": net.name, "strategy": config["strategy"],
      "train": {k: config[k] for k in ("epochs", "batch_size", "learning_rate", "optimizer",
                                       "stop_train_acc")},
      "chunk_size": config["chunk_size"],
      "reported_round": "round 0 (|L| = init_size) of a second run_loop(rounds=1) with the "
                        "same seed, after a warm-up run that compiled everything",
      **rec,
      "next_round_train_seconds": hist.rounds[1]["train_seconds"],
      "next_round_epochs": hist.rounds[1]["epochs"],
      "warmup_round0": _round_record(warm.rounds[0], warm_walls[0]),
  }


def _fit_many_variables(keys, net, config, x, y, masks):
  return jal.fit_many(keys, net, config, x, y, masks).variables


def _predict(net, chunk_size, variables, x):
  return jal.predict(net, variables, x, chunk_size)


def fit_many_section(ks: Sequence[int] = (1, 16, 64), *, subset: int = 200, epochs: int = 20,
                     batch_size: int = 64, pool_size: int = 2048, seq_k: int = 2,
                     seed: int = 0) -> dict:
  """Models/s of ``jal.fit_many`` (LeNet-5, 28×28×1) for each ``K`` vs ``seq_k`` ``jal.fit``s.

  Each model trains on its own random ``subset``-row subset of a synthetic pool. ``fit_many``
  is called once per ``K`` to compile and once timed; the sequential baseline compiles with
  one ``fit`` and then times ``seq_k`` fits.

  Returns:
    ``{"sequential": {...}, "fit_many": [{"k", "models_per_second",
    "example_epochs_per_second", "speedup_vs_sequential", ...}], ...}``.
  """
  shape = (28, 28, 1)
  net = jal.make_net("lenet", shape, 10)
  data = synthetic_dataset(pool_size, 1, shape, 10, seed)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  config = jal.TrainConfig(epochs=epochs, batch_size=batch_size)
  kmax = max(*ks, seq_k)
  masks = np.stack([jal.initial_mask(k, pool_size, subset)
                    for k in jax.random.split(jax.random.key(seed + 1), kmax)])
  keys = jax.random.split(jax.random.key(seed), kmax)
  per_model = subset * epochs
  out = {"model": "lenet", "input_shape": list(shape), "subset": subset, "epochs": epochs,
         "batch_size": batch_size, "pool_size": pool_size,
         "note": "fit_many: one call to compile, the second timed; " + _SYNTHETIC_NOTE}

  def sequential():
    first = jax.block_until_ready(jal.fit(keys[0], net, config, x, y, jnp.asarray(masks[0])))
    del first
    t0 = time.perf_counter()
    for i in range(seq_k):
      jax.block_until_ready(jal.fit(keys[i], net, config, x, y, jnp.asarray(masks[i])).variables)
    s = time.perf_counter() - t0
    return {"k": int(seq_k), "seconds": s, "models_per_second": seq_k / s,
            "example_epochs_per_second": seq_k * per_model / s}

  _log(f"fit_many: sequential fit x{seq_k} (+1 compile)")
  out["sequential"] = _guarded("fit_many/sequential", sequential)
  base = out["sequential"].get("models_per_second")
  rows = []
  for k in ks:
    _log(f"fit_many: K={k} (x2: compile + timed)")
    m = jnp.asarray(masks[:k])
    res = _guarded(f"fit_many/{k}", time_call, functools.partial(
        _fit_many_variables, keys[:k], net, config, x, y, m))
    row = {"k": int(k), **res}
    if "seconds" in res:
      row.update(models_per_second=k / res["seconds"],
                 example_epochs_per_second=k * per_model / res["seconds"])
      if base:
        row["speedup_vs_sequential"] = row["models_per_second"] / base
      _log(f"fit_many: K={k}: {row['models_per_second']:.2f} models/s")
    rows.append(row)
  out["fit_many"] = rows
  return out


def deepal_protocol_section(data: jal.data.Dataset | None = None, *,
                            data_dir: str | None = None, rounds: int | None = None,
                            epochs: int | None = None, time_pool_inference: bool | None = None,
                            warmup: int = 0) -> dict:
  """The DeepAL+ protocol of ``configs/deepal_mnist_resnet.py`` with per-round timings.

  Built exactly like ``experiments.al`` (``experiments.common`` + ``jal.run_loop``): MNIST,
  ResNet-18 (ImageNet stem behind the 1×1 conv 1→3), Adam 1e-3, minibatch 128, |L0| = 100,
  Margin, 100 per round, the full 60k pool (``val_size=0``).

  Args:
    data: the dataset; ``None`` loads MNIST (``load_images``; synthetic if unavailable).
    data_dir: where to look for MNIST.
    rounds: query rounds (default: the config's 5).
    epochs: epochs per round (default: the config's 20).
    time_pool_inference: also time one compile-free ``jal.predict`` over the whole pool
      (compiled ahead of time on its own), the inference half of a query; ``None`` does so
      only when no round after round 0 queries (``rounds < 2``), i.e. when the protocol
      itself gives no compile-free query time.
    warmup: untimed pool inferences before the timed one (on CPU one costs minutes).

  Returns:
    ``{"rounds": [per-round train / query / eval seconds and test accuracy], ...}``. Round 0
    includes the compiles (fit, test evaluation, pool inference, pick); later rounds are
    compile-free.
  """
  config = configs.get("deepal_mnist_resnet")
  if rounds is not None:
    config["rounds"] = int(rounds)
  if epochs is not None:
    config["epochs"] = int(epochs)
  if data is None:
    data, info = load_images(config, data_dir)
  else:
    info = {"dataset": data.name, "source": "given", "pool_size": int(data.x_train.shape[0]),
            "test_size": int(data.x_test.shape[0])}
  _log(f"deepal: {config['rounds']} rounds x {config['epochs']} epochs on {data.name} "
       f"(pool {data.x_train.shape[0]}, test {data.x_test.shape[0]})")
  t0 = time.perf_counter()
  history, walls, net = _run_protocol(config, data)
  total = time.perf_counter() - t0
  recs = [_round_record(r, w) for r, w in zip(history.rounds, walls, strict=True)]
  for r in recs:
    steps = math.ceil(r["n_labeled"] / config["batch_size"])
    r["seconds_per_step"] = r["train_seconds_per_epoch"] / steps
    r["includes_compile"] = r["round"] == 0
    _log(f"deepal: round {r['round']} |L|={r['n_labeled']} train {r['train_seconds']:.1f}s "
         f"query {r['query_seconds']:.1f}s acc {r['test_accuracy']:.4f}")
  later = recs[1:]
  out = {
      "config": dict(config), "data": info, "model": net.name,
      "params": _n_params(jax.eval_shape(net.init, jax.random.key(0))), "total_seconds": total,
      "rounds": recs,
      "final_test_accuracy": recs[-1]["test_accuracy"],
      "note": "train = jal.fit; query = pool inference (score) + Margin top-k (select); "
              "other = test evaluation + bookkeeping; round 0 includes every compile",
  }
  summary = history.summary()
  if "aubc" in summary:
    out.update(aubc=summary["aubc"], f_acc=summary["f_acc"])
  if later:  # Rounds >= 1: compile-free; the last one trains and evaluates but never queries.
    mean = {k: float(np.mean([r[k] for r in later]))
            for k in ("train_seconds", "train_seconds_per_epoch")}
    querying = later[:-1]
    if querying:
      mean.update({k: float(np.mean([r[k] for r in querying]))
                   for k in ("score_seconds", "select_seconds", "query_seconds",
                             "round_seconds")})
    out["compile_free_mean"] = mean
  if time_pool_inference is None:
    time_pool_inference = config["rounds"] < 2
  if time_pool_inference:
    chunk = int(config["chunk_size"])
    x = jnp.asarray(data.x_train)
    # All-zero weights of the right shapes: the cost of inference does not depend on values,
    # and an eager ResNet-18 init costs seconds of op-by-op compiles on CPU.
    variables = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                             jax.eval_shape(net.init, jax.random.key(0)))
    _log(f"deepal: timing one pool inference over {x.shape[0]} rows")
    t = _guarded("deepal/pool_inference", time_jit, functools.partial(_predict, net, chunk),
                 variables, x, warmup=warmup, repeats=1)
    if "seconds" in t:
      t["examples_per_second"] = x.shape[0] / t["seconds"]
    out["pool_inference"] = {"n": int(x.shape[0]), "chunk_size": chunk, **t}
  return out


# ----------------------------------------------------------------------------- driver


def _score_specs(s: Settings) -> list[dict]:
  lenet = {"name": "lenet", "model": "lenet", "input_shape": (28, 28, 1), "kwargs": {}}
  resnet = {"name": "resnet18", "model": "resnet18", "input_shape": s.resnet_input_shape,
            "kwargs": {"stem": s.resnet_stem}}
  return [
      {**lenet, "el2n_n": s.el2n_n_lenet, "el2n_chunk": s.el2n_chunk,
       "grand_n": s.grand_n_lenet, "grand_chunk": s.grand_chunk_lenet},
      {**resnet, "el2n_n": s.el2n_n_resnet, "el2n_chunk": s.el2n_chunk,
       "grand_n": s.grand_n_resnet, "grand_chunk": s.grand_chunk_resnet},
  ]


def _fit_specs(s: Settings) -> list[dict]:
  lenet, resnet = (
      {k: spec[k] for k in ("name", "model", "input_shape", "kwargs")} for spec in
      _score_specs(s))
  return [
      {**lenet, "n": s.fit_n_lenet, "batch_size": s.fit_batch_lenet,
       "epochs": s.fit_epochs_lenet},
      {**resnet, "n": s.fit_n_resnet, "batch_size": s.fit_batch_resnet,
       "epochs": s.fit_epochs_resnet},
  ]


def run_benchmark(sections: Sequence[str] = SECTIONS, settings: Settings | None = None, *,
                  protocol: str | None = None, data_dir: str | None = None) -> dict:
  """Runs the chosen sections and returns the JSON-able result.

  Args:
    sections: names from ``SECTIONS`` (run in that order).
    settings: sizes; ``None`` means ``default_settings()``.
    protocol: ``"deepal"`` adds the ``deepal_protocol`` section.
    data_dir: where MNIST is looked for (``al_round``, ``deepal_protocol``).

  Returns:
    ``{"meta": {...}, "<section>": {...}, ...}``; each section carries ``wall_seconds`` and
    the load average before and after it.
  """
  sections = parse_sections(sections)
  s = settings or default_settings()
  if protocol not in (None, "", "none", "deepal"):
    raise ValueError(f"protocol must be 'deepal' or None, got {protocol!r}")
  runners = {
      "machine": lambda: machine_section(s.matmul_n, s.matmul_repeats, s.warmup, s.seed),
      "scores": lambda: scores_section(_score_specs(s), warmup=s.warmup, repeats=s.repeats,
                                       seed=s.seed),
      "fit": lambda: fit_section(_fit_specs(s), seed=s.seed),
      "al_round": lambda: al_round_section(data_dir=data_dir, init_size=s.al_init_size,
                                           budget=s.al_budget, seed=s.seed),
      "fit_many": lambda: fit_many_section(
          s.fit_many_ks, subset=s.fit_many_subset, epochs=s.fit_many_epochs,
          batch_size=s.fit_many_batch, pool_size=s.fit_many_pool, seq_k=s.fit_many_seq_k,
          seed=s.seed),
      "deepal_protocol": lambda: deepal_protocol_section(
          data_dir=data_dir, rounds=s.deepal_rounds, epochs=s.deepal_epochs),
  }
  todo = list(sections) + (["deepal_protocol"] if protocol == "deepal" else [])
  t_all = time.perf_counter()
  out = {"meta": {
      "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      "argv": list(sys.argv), "backend": jax.default_backend(), "sections": todo,
      "settings": dataclasses.asdict(s), "loadavg_start": _load()}}
  for name in todo:
    _log(f"section {name} (loadavg {_load()})")
    before, t0 = _load(), time.perf_counter()
    res = _guarded(name, runners[name])
    res.update(wall_seconds=time.perf_counter() - t0, loadavg_before=before,
               loadavg_after=_load())
    out[name] = res
    _log(f"section {name} done in {res['wall_seconds']:.1f}s")
  out["meta"].update(wall_seconds=time.perf_counter() - t_all, loadavg_end=_load())
  return to_json(out)


def to_json(obj: Any) -> Any:
  """``obj`` with NumPy / JAX scalars and arrays as Python values, tuples as lists and
  non-finite floats as ``None`` (so ``json.dumps(..., allow_nan=False)`` accepts it)."""
  if isinstance(obj, dict):
    return {str(k): to_json(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_json(v) for v in obj]
  if isinstance(obj, (np.ndarray, jax.Array)):
    return to_json(np.asarray(obj).tolist())
  if isinstance(obj, np.generic):
    return to_json(obj.item())
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


# ----------------------------------------------------------------------------- flags

_SECTIONS = flags.DEFINE_string("sections", ",".join(SECTIONS),
                                f"Comma-separated subset of {','.join(SECTIONS)} (may be "
                                "empty, e.g. with --protocol=deepal).", allow_override=True)
_PROTOCOL = flags.DEFINE_enum("protocol", "none", ["none", "deepal"],
                              "deepal: also run the (long) DeepAL+ MNIST/ResNet-18 protocol.",
                                  allow_override=True)
_OUT = flags.DEFINE_string("out", None, "Also write the JSON to this file.", allow_override=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR, "
                                "then ../shared/data); synthetic data if MNIST is absent.",
                                    allow_override=True)
_KS = flags.DEFINE_list("fit_many_ks", None, "fit_many K values (default 1,4 on CPU, "
                        "1,16,64,256 on an accelerator).", allow_override=True)
_SHAPE = flags.DEFINE_list("resnet_input_shape", None, "H,W,C of the scores/fit ResNet-18 "
                           "(default 28,28,1: grayscale adapter).", allow_override=True)
_INT_FLAGS = {
    f.name: flags.DEFINE_integer(f.name, None, f"Override the backend default ({f.name}).",
        allow_override=True)
    for f in dataclasses.fields(Settings) if f.type is int
}
_STEM = flags.DEFINE_enum("resnet_stem", None, ["cifar", "imagenet"],
                          "Stem of the scores/fit ResNet-18 (default cifar).", allow_override=True)


def settings_from_flags(backend: str | None = None) -> Settings:
  """``default_settings(backend)`` with every flag that was set applied."""
  over: dict[str, Any] = {k: f.value for k, f in _INT_FLAGS.items() if f.value is not None}
  if _KS.value is not None:
    over["fit_many_ks"] = tuple(int(k) for k in _KS.value)
  if _SHAPE.value is not None:
    over["resnet_input_shape"] = tuple(int(v) for v in _SHAPE.value)
  if _STEM.value is not None:
    over["resnet_stem"] = _STEM.value
  return dataclasses.replace(default_settings(backend), **over)


def _main():
  stdout = sys.stdout
  with contextlib.redirect_stdout(sys.stderr):  # Library prints must not corrupt the JSON.
    result = run_benchmark(parse_sections(_SECTIONS.value), settings_from_flags(),
                           protocol=_PROTOCOL.value, data_dir=_DATA_DIR.value)
  text = json.dumps(result, indent=1, allow_nan=False)
  if _OUT.value:
    path = pathlib.Path(_OUT.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    _log(f"wrote {path}")
  print(text, file=stdout, flush=True)


if __name__ == "__main__":
  app.run(common.main_guard(_main))
