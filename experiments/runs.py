"""One experiment of a config: an AL run (``run_al``) or a one-round trial (``run_one_round``).

Shared by the binaries (``al`` and ``compare`` run ``run_al``; ``one_round`` runs
``run_one_round``); no flags here.
"""

import dataclasses
import json
import pathlib
import time

import jax
import numpy as np
from ml_collections import ConfigDict

import jal
from experiments import build
from jal import parallel, rambo

__all__ = ["run_al", "run_one_round"]


def run_al(config: ConfigDict, workdir: str, data_dir: str | None = None,
           verbose: bool = True, mesh=None) -> dict:
  """Runs the AL experiment of ``config`` in ``workdir`` (resumable).

  ``jal.run_loop`` writes ``workdir/history.json`` (and ``checkpoint.npz``, ``curve.png``);
  nothing else does. With a ``mesh`` the loop runs sharded; under multi-host JAX only
  process 0 prints and writes.

  Returns:
    The history summary (``rounds``, ``aubc``, ``f_acc``, ``config``, ``finished``,
    ``wall_seconds``), as written to ``history.json``.
  """
  verbose = verbose and parallel.is_main_process()
  data = build.dataset(config, data_dir)
  net = build.net(config, data, verbose=verbose)
  strategy = build.strategy(config)
  if parallel.is_multiprocess_mesh(mesh):
    # Each process keeps only its rows of the pool images (the file itself was read and
    # standardised whole); labels [n] and the test set stay whole on every host.
    data = data._replace(x_train=parallel.process_pool((data.x_train,), mesh)[0])
  if verbose:
    print(f"{data.name}: pool {data.y_train.shape[0]}, test {data.x_test.shape[0]}, "
          f"{data.num_classes} classes; model {net.name}; strategy {strategy.name}", flush=True)
  extra = {"seed": int(config.seed), "dropout": net.dropout,
           "strategy_kwargs": build.strategy_kwargs(config),
           "train_transform": build.train_transform_record(config)}
  if build.pool_settings_active(config):
    extra["pool_settings"] = config.data.pool.to_dict()
  history = jal.run_loop(build.run_key(config), data, net, build.train_config(config), strategy,
                         build.loop_config(config), workdir=workdir, verbose=verbose, mesh=mesh,
                         extra_config=extra, initial_set=build.initial_set(config))
  summary = history.summary()  # finished, wall_seconds: the loop's own record (it prints AUBC)
  return summary


def run_one_round(config: ConfigDict, workdir: str, data_dir: str | None = None,
                  verbose: bool = True) -> dict:
  """Runs one trial of ``config`` (``jal.rambo.run_one_round``) and writes
  ``workdir/result.json``; returns its dict."""
  t0 = time.perf_counter()
  cfg = build.rambo_config(config)
  data = build.dataset(config, data_dir)
  net = build.net(config, data)
  tc = build.train_config(config)
  name = config.strategy.name
  if verbose:
    print(f"{data.name}: pool {data.x_train.shape[0]}, val {data.x_val.shape[0]}; f = {net.name}; "
          f"{name} k={cfg.k} B={cfg.budget}", flush=True)
  res = rambo.run_one_round(build.run_key(config), data, net, tc, cfg, name, verbose=verbose)
  res["seconds"] = time.perf_counter() - t0
  res["pool_class_counts"] = np.bincount(data.y_train, minlength=data.num_classes).tolist()
  res["settings"] = {"config": config.to_dict(), "rambo": dataclasses.asdict(cfg),
                     "device": jax.default_backend()}
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "result.json").write_text(json.dumps(res, indent=1, default=str))
  if verbose:
    print(f"val {res['val_accuracy']:.4f}  test {res['test_accuracy']:.4f}  "
          f"({res['seconds']:.1f}s) -> {out / 'result.json'}", flush=True)
  return res
