"""The ``fit`` and ``fit_many`` sections: seconds per epoch of ``jal.fit``, models/s of
``jal.fit_many`` against sequential fits."""

import functools
import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jal
from experiments.bench import timing
from experiments.bench.data import SYNTHETIC_NOTE, synthetic_dataset

__all__ = ["fit_many_section", "fit_section", "fit_throughput"]


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
  t = timing.time_call(lambda: jal.fit(key, net, config, x, y, mask).variables)
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
                 "shapes, the second (compile-free) call timed; " + SYNTHETIC_NOTE}
  for spec in models:
    if int(spec["n"]) <= 0:
      continue
    shape = tuple(int(s) for s in spec["input_shape"])
    kwargs = dict(spec.get("kwargs") or {})
    net = jal.make_net(spec["model"], shape, 10, **kwargs)
    timing.log(f"fit: {spec['name']} n={spec['n']} batch={spec['batch_size']} "
         f"epochs={spec['epochs']} (x2: compile + timed)")
    res = timing.guarded(f"fit/{spec['name']}", fit_throughput, net, shape, int(spec["n"]),
                   int(spec["batch_size"]), int(spec["epochs"]), seed=seed)
    res = {"model": spec["model"], "input_shape": list(shape), "model_kwargs": kwargs, **res}
    if "seconds_per_epoch" in res:
      timing.log(f"fit: {spec['name']}: {res['seconds_per_epoch']:.3f} s/epoch "
           f"(compile ~{res['compile_seconds']:.1f}s)")
    out[spec["name"]] = res
  return out


def _fit_many_variables(keys, net, config, x, y, masks):
  return jal.fit_many(keys, net, config, x, y, masks).variables


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
         "note": "fit_many: one call to compile, the second timed; " + SYNTHETIC_NOTE}

  def sequential():
    first = jax.block_until_ready(jal.fit(keys[0], net, config, x, y, jnp.asarray(masks[0])))
    del first
    t0 = time.perf_counter()
    for i in range(seq_k):
      jax.block_until_ready(jal.fit(keys[i], net, config, x, y, jnp.asarray(masks[i])).variables)
    s = time.perf_counter() - t0
    return {"k": int(seq_k), "seconds": s, "models_per_second": seq_k / s,
            "example_epochs_per_second": seq_k * per_model / s}

  timing.log(f"fit_many: sequential fit x{seq_k} (+1 compile)")
  out["sequential"] = timing.guarded("fit_many/sequential", sequential)
  base = out["sequential"].get("models_per_second")
  rows = []
  for k in ks:
    timing.log(f"fit_many: K={k} (x2: compile + timed)")
    m = jnp.asarray(masks[:k])
    res = timing.guarded(f"fit_many/{k}", timing.time_call, functools.partial(
        _fit_many_variables, keys[:k], net, config, x, y, m))
    row = {"k": int(k), **res}
    if "seconds" in res:
      row.update(models_per_second=k / res["seconds"],
                 example_epochs_per_second=k * per_model / res["seconds"])
      if base:
        row["speedup_vs_sequential"] = row["models_per_second"] / base
      timing.log(f"fit_many: K={k}: {row['models_per_second']:.2f} models/s")
    rows.append(row)
  out["fit_many"] = rows
  return out
