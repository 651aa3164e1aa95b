"""The ``al_round`` and ``deepal_protocol`` sections: AL rounds of ``jal.run_loop`` on the
``mnist_lenet`` and ``deepal_mnist_resnet`` configs, split into train / score / select."""

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

import jal
from experiments import build, configs
from experiments.bench import data as bench_data
from experiments.bench import timing
from experiments.bench.scores import n_params

__all__ = ["al_round_section", "deepal_protocol_section"]


def _flat_config(config: ConfigDict) -> dict:
  """The settings of an ``"al"`` config under the flat keys of the benchmark's JSON."""
  t, lo = config.train, config.loop
  return {"dataset": config.data.name, "model": config.model.name,
          "model_kwargs": config.model.kwargs.to_dict(), "strategy": config.strategy.name,
          "seed": config.seed, "val_size": config.data.val_size, "init_size": lo.init_size,
          "budget": lo.budget, "rounds": lo.rounds, "chunk_size": lo.chunk_size,
          "epochs": t.epochs, "batch_size": t.batch_size, "learning_rate": t.learning_rate,
          "optimizer": t.optimizer, "stop_train_acc": t.stop_train_acc,
          "superloss": build.uses_superloss(config), "augment": t.augment,
          "dropout": config.model.dropout}


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


def _run_protocol(config: ConfigDict, data: jal.data.Dataset):
  """``jal.run_loop`` on ``config`` built through ``experiments.build`` (no workdir).

  Returns:
    ``(history, per-round wall seconds, net)``; a round's wall time runs from the previous
    round's end (or the call) to its ``on_round`` and so includes the test-set evaluation.
  """
  net, strategy = build.net(config, data), build.strategy(config)
  stamps = []
  t0 = time.perf_counter()
  history = jal.run_loop(build.run_key(config), data, net, build.train_config(config),
                         strategy, build.loop_config(config), verbose=False,
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
  config.loop.update(init_size=int(init_size), budget=int(budget), rounds=1)
  config.seed = int(seed)
  if data is None:
    data, info = bench_data.load_images(config, data_dir)
  else:
    info = {"dataset": data.name, "source": "given", "pool_size": int(data.x_train.shape[0]),
            "test_size": int(data.x_test.shape[0])}
  timing.log(f"al_round: warm-up run_loop on {data.name} (pool {data.x_train.shape[0]})")
  warm, warm_walls, net = _run_protocol(config, data)
  timing.log("al_round: timed run_loop")
  hist, walls, _ = _run_protocol(config, data)
  rec = _round_record(hist.rounds[0], walls[0])
  timing.log(f"al_round: train {rec['train_seconds']:.2f}s score {rec['score_seconds']:.2f}s "
       f"select {rec['select_seconds']:.3f}s")
  return {
      "data": info, "model": net.name, "strategy": config.strategy.name,
      "train": {k: config.train[k] for k in ("epochs", "batch_size", "learning_rate",
                                             "optimizer", "stop_train_acc")},
      "chunk_size": config.loop.chunk_size,
      "reported_round": "round 0 (|L| = init_size) of a second run_loop(rounds=1) with the "
                        "same seed, after a warm-up run that compiled everything",
      **rec,
      "next_round_train_seconds": hist.rounds[1]["train_seconds"],
      "next_round_epochs": hist.rounds[1]["epochs"],
      "warmup_round0": _round_record(warm.rounds[0], warm_walls[0]),
  }


def _predict(net, chunk_size, variables, x):
  return jal.predict(net, variables, x, chunk_size)


def deepal_protocol_section(data: jal.data.Dataset | None = None, *,
                            data_dir: str | None = None, rounds: int | None = None,
                            epochs: int | None = None, time_pool_inference: bool | None = None,
                            warmup: int = 0) -> dict:
  """The DeepAL+ protocol of ``configs/deepal_mnist_resnet.py`` with per-round timings.

  Built exactly like ``experiments.al`` (``experiments.build`` + ``jal.run_loop``): MNIST,
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
    config.loop.rounds = int(rounds)
  if epochs is not None:
    config.train.epochs = int(epochs)
  if data is None:
    data, info = bench_data.load_images(config, data_dir)
  else:
    info = {"dataset": data.name, "source": "given", "pool_size": int(data.x_train.shape[0]),
            "test_size": int(data.x_test.shape[0])}
  timing.log(f"deepal: {config.loop.rounds} rounds x {config.train.epochs} epochs on {data.name} "
       f"(pool {data.x_train.shape[0]}, test {data.x_test.shape[0]})")
  t0 = time.perf_counter()
  history, walls, net = _run_protocol(config, data)
  total = time.perf_counter() - t0
  recs = [_round_record(r, w) for r, w in zip(history.rounds, walls, strict=True)]
  for r in recs:
    steps = math.ceil(r["n_labeled"] / config.train.batch_size)
    r["seconds_per_step"] = r["train_seconds_per_epoch"] / steps
    r["includes_compile"] = r["round"] == 0
    timing.log(f"deepal: round {r['round']} |L|={r['n_labeled']} train {r['train_seconds']:.1f}s "
         f"query {r['query_seconds']:.1f}s acc {r['test_accuracy']:.4f}")
  later = recs[1:]
  out = {
      "config": _flat_config(config), "data": info, "model": net.name,
      "params": n_params(jax.eval_shape(net.init, jax.random.key(0))), "total_seconds": total,
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
    time_pool_inference = config.loop.rounds < 2
  if time_pool_inference:
    chunk = int(config.loop.chunk_size)
    x = jnp.asarray(data.x_train)
    # All-zero weights of the right shapes: the cost of inference does not depend on values,
    # and an eager ResNet-18 init costs seconds of op-by-op compiles on CPU.
    variables = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                             jax.eval_shape(net.init, jax.random.key(0)))
    timing.log(f"deepal: timing one pool inference over {x.shape[0]} rows")
    t = timing.guarded("deepal/pool_inference", timing.time_jit,
                       functools.partial(_predict, net, chunk), variables, x, warmup=warmup,
                       repeats=1)
    if "seconds" in t:
      t["examples_per_second"] = x.shape[0] / t["seconds"]
    out["pool_inference"] = {"n": int(x.shape[0]), "chunk_size": chunk, **t}
  return out
