"""The active-learning loop: train → evaluate → score → select → label, with checkpoints.

Every round's randomness is derived from one seed by ``fold_in(round)``, and each completed
round is checkpointed (labeled mask, history, the strategy's state, PRNG key data) into
``workdir`` as one atomic file; a run that is killed resumes at the first unfinished round
and ends with the same result as an uninterrupted one. The loop is the only writer of
``history.json`` (atomically, after the checkpoint; ``"finished": true`` and the run's
``"wall_seconds"`` once the last round is done).
"""

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import resource
import time
import zipfile
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jal import metrics, parallel
from jal.data.dataset import Dataset
from jal.data.initial import InitialSet, twisted_initial_mask
from jal.files import atomic_write, workdir_lock
from jal.models.net import Net
from jal.strategies import Context, Strategy, select_timed
from jal.strategies.base import NEXT_STATE, STATE_STREAM
from jal.train import TrainConfig, accuracy, all_finite, fit

__all__ = ["LoopConfig", "History", "initial_mask", "label", "run_loop", "workdir_lock",
           "STATE_STREAM"]


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """The AL protocol.

  Attributes:
    init_size: ``|L₀|``, drawn uniformly at random from the pool.
    budget: ``b``, points queried per round.
    rounds: number of query rounds; the model is trained ``rounds + 1`` times.
    chunk_size: rows per chunk for pool-wide inference.
  """
  init_size: int = 100
  budget: int = 100
  rounds: int = 5
  chunk_size: int = 1024

  def __post_init__(self):
    if self.init_size < 1 or self.budget < 1 or self.rounds < 0:
      raise ValueError(f"need init_size >= 1, budget >= 1, rounds >= 0; got {self}")
    if self.chunk_size < 1:
      raise ValueError(f"chunk_size must be >= 1 (rows per chunk of pool inference), got "
                       f"{self.chunk_size}")

  def validate(self, pool_size: int) -> None:
    """Raises ``ValueError`` if the protocol does not fit in a pool of ``pool_size`` (the
    pool-free ranges are checked when the config is made)."""
    need = self.init_size + self.budget * self.rounds
    if need > pool_size:
      raise ValueError(f"init_size + budget * rounds = {need} exceeds the pool of {pool_size}")


@dataclasses.dataclass
class History:
  """Per-round record of a run (saved as ``history.json``).

  Attributes:
    config: the run's settings (JSON-able).
    rounds: one dict per trained model with ``round``, ``n_labeled``, ``test_accuracy``
      (and ``val_accuracy`` when the dataset has a validation split), ``class_counts``,
      ``train_seconds``, ``score_seconds``, ``select_seconds``, ``epochs``, ``queried``
      (indices selected after this round's training) and ``peak_rss_mib`` (the process's
      peak resident memory so far: a run's own peak when it runs in its own process).
    finished: whether every round of the protocol is done.
    wall_seconds: wall time of the run, summed over resumed invocations.
  """
  config: dict
  rounds: list = dataclasses.field(default_factory=list)
  finished: bool = False
  wall_seconds: float = 0.0

  @property
  def accuracies(self) -> list[float]:
    return [r["test_accuracy"] for r in self.rounds]

  def summary(self) -> dict:
    """JSON-able dict with ``rounds``, ``aubc``, ``f_acc`` (when there are ≥ 2 rounds)."""
    out = {"config": self.config, "rounds": self.rounds, "finished": self.finished,
           "wall_seconds": self.wall_seconds}
    accs = self.accuracies
    if len(accs) >= 2:
      out["aubc"] = metrics.aubc(accs, self.config["budget"])
      out["f_acc"] = metrics.f_acc(accs)
    return out

  def save(self, path: str | os.PathLike) -> None:
    atomic_write(pathlib.Path(path), self.to_json().encode())

  def to_json(self) -> str:
    return json.dumps(self.summary(), indent=1)

  @classmethod
  def from_json(cls, text: str) -> "History":
    d = json.loads(text)
    return cls(config=d["config"], rounds=d["rounds"], finished=bool(d.get("finished", False)),
               wall_seconds=float(d.get("wall_seconds", 0.0)))

  @classmethod
  def load(cls, path: str | os.PathLike) -> "History":
    return cls.from_json(pathlib.Path(path).read_text())


def initial_mask(key: jax.Array, pool_size: int, init_size: int) -> np.ndarray:
  """A ``[pool_size]`` bool mask with ``init_size`` uniformly drawn True entries."""
  if not 1 <= init_size <= pool_size:
    raise ValueError(f"init_size must be in [1, {pool_size}], got {init_size}")
  mask = np.zeros(pool_size, bool)
  mask[np.asarray(jax.random.permutation(key, pool_size))[:init_size]] = True
  return mask


def label(mask: np.ndarray, indices: Any) -> np.ndarray:
  """Returns a new mask with ``indices`` labeled; rejects duplicates, out-of-range or
  already-labeled indices (nothing is changed on error)."""
  idx = np.asarray(indices).ravel()
  if idx.size and not np.issubdtype(idx.dtype, np.integer):
    raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
  if idx.size and (idx.min() < 0 or idx.max() >= mask.size):
    raise ValueError(f"indices must lie in [0, {mask.size}), got [{idx.min()}, {idx.max()}]")
  if np.unique(idx).size != idx.size:
    raise ValueError("indices contain duplicates")
  if mask[idx].any():
    raise ValueError(f"{int(mask[idx].sum())} indices are already labeled")
  out = mask.copy()
  out[idx] = True
  return out


def _checkpoint_paths(workdir):
  w = pathlib.Path(workdir)
  return w / "checkpoint.npz", w / "history.json"


def _save_checkpoint(workdir, mask, next_round, key, history, state):
  """One atomic file holds everything a resume needs; ``history.json`` is written after it
  (a kill between the two leaves a stale ``history.json`` that the resume rewrites)."""
  ckpt, hist = _checkpoint_paths(workdir)
  buf = io.BytesIO()
  np.savez(buf, mask=mask, next_round=np.int64(next_round),
           key_data=np.asarray(jax.random.key_data(key)),
           fingerprint=np.bytes_(json.dumps(history.config, sort_keys=True).encode()),
           history=np.bytes_(history.to_json().encode()),
           state=np.frombuffer(serialization.msgpack_serialize(state) if state is not None
                               else b"", np.uint8))
  atomic_write(ckpt, buf.getvalue())
  history.save(hist)


def _try_resume(workdir, config: dict, key):
  ckpt, hist = _checkpoint_paths(workdir)
  if not ckpt.exists():
    return None
  try:
    return _read_checkpoint(ckpt, hist, workdir, config, key)
  except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError) as e:
    raise ValueError(f"{ckpt} is damaged ({type(e).__name__}: {e}); delete it (the run then "
                     "starts again from round 0) or use another --workdir") from None


def _config_diff(saved: dict, now: dict) -> str:
  """``key: saved → now`` for the top-level settings that differ."""
  keys = sorted(set(saved) | set(now), key=str)
  return "; ".join(f"{k}: {saved.get(k, '(unset)')!r} → {now.get(k, '(unset)')!r}"
                   for k in keys if saved.get(k) != now.get(k))


def _read_checkpoint(ckpt, hist, workdir, config: dict, key):
  with np.load(ckpt) as z:
    fp = bytes(z["fingerprint"]).decode()
    if fp != json.dumps(config, sort_keys=True):
      raise ValueError(f"{workdir} holds a checkpoint of a different run "
                       f"({_config_diff(json.loads(fp), config)}); use another --workdir "
                       "or delete it")
    if not np.array_equal(z["key_data"], np.asarray(jax.random.key_data(key))):
      raise ValueError(f"{workdir}: checkpoint PRNG key differs from this run's seed")
    if "history" in z:
      history = History.from_json(bytes(z["history"]).decode())
    else:  # checkpoints written before the history moved into them
      history = History.load(hist)
    raw = z["state"].tobytes() if "state" in z else b""
    state = serialization.msgpack_restore(raw) if raw else None
    return z["mask"].astype(bool), int(z["next_round"]), history, state


def _check_finite_inputs(data: Dataset) -> None:
  """Rejects NaN / Inf in the pool and test images before any training."""
  for split in ("x_train", "x_test", "x_val"):
    x = getattr(data, split)
    if x is None or (isinstance(x, jax.Array) and not x.is_fully_addressable):
      continue  # a multi-process pool is checked where each process loads its rows
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(np.asarray(x))))
    if bad:
      raise ValueError(f"{data.name}: {split} holds {bad} non-finite values (NaN / Inf); "
                       "clean the data before running")


def _pool(data: Dataset, mesh) -> tuple[jax.Array, jax.Array]:
  """The pool ``(x, y)`` the loop trains and scores on.

  Single process (with or without a mesh): ``data``'s train split as is. Under a mesh that
  spans several processes: global ``[n_pad, ...]`` arrays split along ``data`` in which each
  process holds only its rows (``parallel.process_pool``); ``data.x_train`` may already be
  such a global array (``experiments.runs.run_al`` builds it and drops the full images).
  ``data.y_train`` ``[n]`` stays whole on every host (class counts, label checks).
  """
  if not parallel.is_multiprocess_mesh(mesh):
    return jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  n = data.y_train.shape[0]
  x = data.x_train
  if not (isinstance(x, jax.Array) and not x.is_fully_addressable):
    (x,) = parallel.process_pool((x,), mesh)
  if x.shape[0] != parallel.padded_size(n, mesh.shape[parallel.DATA]):
    raise ValueError(f"global x_train has {x.shape[0]} rows for a pool of {n}")
  (y,) = parallel.process_pool((np.asarray(data.y_train),), mesh)
  return x, y


def _pad_mask(mask: np.ndarray, n_pad: int) -> np.ndarray:
  """``mask`` ``[n]`` grown to ``[n_pad]`` with False (padding rows are never trained on)."""
  return mask if mask.shape[0] == n_pad else np.pad(mask, (0, n_pad - mask.shape[0]))


def run_loop(key: jax.Array, data: Dataset, net: Net, train_config: TrainConfig,
             strategy: Strategy, loop_config: LoopConfig, *, workdir: str | None = None,
             verbose: bool = True, extra_config: dict | None = None,
             on_round: Callable[[int, dict], None] | None = None, mesh=None,
             initial_set: InitialSet | None = None) -> History:
  """Runs the AL protocol on ``data`` (pool = train split, accuracy on the test split).

  Args:
    key: PRNG key of the run (initial set, every training, every selection).
    data: the dataset; its train split is the pool.
    net: the target network.
    train_config: how the target model is trained each round (from scratch).
    strategy: the query strategy.
    loop_config: ``|L₀|``, ``b``, number of rounds.
    workdir: where ``history.json``, ``checkpoint.npz`` and ``curve.png`` go; an existing
      checkpoint of the same run is resumed. ``None`` keeps everything in memory.
    verbose: print a per-round table and progress.
    extra_config: more JSON-able settings to record (and to check on resume).
    on_round: called as ``on_round(round, record)`` after each round.
    mesh: optional ``jal.parallel`` mesh; training, scoring and selection then run split
      along its ``data`` axis. Under multi-host JAX only process 0 prints and writes
      ``workdir`` (every process still reads a checkpoint to resume), and when the mesh
      spans several processes the pool is assembled from each process's own rows (see
      :func:`_pool`).
    initial_set: how ``L₀`` is drawn (``jal.data.InitialSet``); ``None`` or mode
      ``"random"``: uniformly (:func:`initial_mask`). A twisted set is recorded in the config.

  Returns:
    The ``History``.
  """
  # Settings and inputs are checked before the workdir is created or locked.
  loop_config.validate(data.y_train.shape[0])
  (initial_set or InitialSet()).validate()
  _check_finite_inputs(data)
  lock = workdir_lock(workdir) if workdir and parallel.is_main_process() else None
  with lock or contextlib.nullcontext():
    return _run_rounds(key, data, net, train_config, strategy, loop_config, workdir, verbose,
                       extra_config, on_round, mesh, initial_set or InitialSet())


def _run_rounds(key, data, net, train_config, strategy, loop_config, workdir, verbose,
                extra_config, on_round, mesh, initial_set) -> History:
  t_start = time.perf_counter()
  x, y = _pool(data, mesh)
  n = data.y_train.shape[0]
  main = parallel.is_main_process()
  verbose = verbose and main
  config = {"dataset": data.name, "model": net.name, "strategy": strategy.name,
            **dataclasses.asdict(loop_config), "train": dataclasses.asdict(train_config),
            **(extra_config or {})}
  if initial_set.validate().mode != "random":
    config["initial_set"] = initial_set._asdict()
  k_init, k_rounds = jax.random.split(key)
  resumed = _try_resume(workdir, config, key) if workdir else None
  if resumed:
    mask, start, history, state = resumed
    if main:  # the checkpoint is authoritative: a stale or damaged history.json is rewritten
      history.save(_checkpoint_paths(workdir)[1])
    if verbose:
      print(f"resuming {workdir} at round {start} ({int(mask.sum())} labeled)", flush=True)
  else:
    mask = (initial_mask(k_init, n, loop_config.init_size) if initial_set.mode == "random" else
            twisted_initial_mask(k_init, data.y_train, loop_config.init_size, initial_set.mode,
                                 net.num_classes, initial_set.minor_fraction))
    start, history = 0, History(config)
    state = None
  wall_before = history.wall_seconds
  if verbose and start == 0:
    print(f"{'round':>5} {'labeled':>8} {'test_acc':>8} {'train_s':>8} {'score_s':>8} "
          f"{'select_s':>8}", flush=True)
  y_np = np.asarray(data.y_train)
  has_val = data.x_val is not None and len(data.x_val) > 0
  x_val, y_val = (jnp.asarray(data.x_val), jnp.asarray(data.y_val)) if has_val else (None, None)
  fit_fn = strategy.fit or fit
  for r in range(start, loop_config.rounds + 1):
    k_fit, k_sel = jax.random.split(jax.random.fold_in(k_rounds, r))
    t0 = time.perf_counter()
    res = fit_fn(k_fit, net, train_config, x, y, jnp.asarray(_pad_mask(mask, x.shape[0])),
                 mesh=mesh)
    jax.block_until_ready(res.variables)
    if not all_finite(res.variables):
      raise FloatingPointError(
          f"round {r}: training diverged (non-finite parameters after {int(res.epochs)} "
          f"epochs, learning rate {train_config.learning_rate:g}); lower the learning rate "
          "or check the inputs; no selection was made from this model")
    t_train = time.perf_counter() - t0
    acc = accuracy(net, res.variables, data.x_test, data.y_test, loop_config.chunk_size)
    rec = {"round": r, "n_labeled": int(mask.sum()), "test_accuracy": acc,
           "class_counts": np.bincount(y_np[mask], minlength=net.num_classes).tolist(),
           "epochs": int(res.epochs), "train_seconds": t_train,
           "score_seconds": 0.0, "select_seconds": 0.0, "queried": []}
    if has_val:
      rec["val_accuracy"] = accuracy(net, res.variables, x_val, y_val, loop_config.chunk_size)
    if r < loop_config.rounds:
      ctx = Context(net, res.variables, x, y, jnp.asarray(mask), net.num_classes,
                    loop_config.chunk_size, mesh, x_val=x_val, y_val=y_val,
                    train_config=train_config, fit_extra=res.extra)
      if strategy.state is not None:
        state = strategy.state(jax.random.fold_in(k_sel, STATE_STREAM), ctx, state)
        ctx = ctx._replace(state=state)
      idx, info, secs = select_timed(strategy, k_sel, ctx, loop_config.budget)
      state = info.pop(NEXT_STATE, state)  # what pick learnt this round (checkpointed)
      rec["score_seconds"], rec["select_seconds"] = secs["score"], secs["select"]
      if info:
        rec["pick_info"] = info
      rec["queried"] = idx.tolist()
      mask = label(mask, idx)
    # The process's high-water mark so far (Linux: KiB): the run's peak when it has the process.
    rec["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    history.rounds.append(rec)
    history.finished = r == loop_config.rounds
    history.wall_seconds = wall_before + time.perf_counter() - t_start
    if verbose:
      extra = "".join(f" {k}={v:.2f}" for k, v in rec.get("pick_info", {}).items()
                      if k.endswith("_seconds"))
      print(f"{r:>5} {rec['n_labeled']:>8} {acc:>8.4f} {t_train:>8.2f} "
            f"{rec['score_seconds']:>8.2f} {rec['select_seconds']:>8.2f}{extra}", flush=True)
    if workdir and main:
      _save_checkpoint(workdir, mask, r + 1, key, history, state)
    if on_round:
      on_round(r, rec)
  if workdir and main:
    accs = np.asarray(history.accuracies)
    counts = np.asarray([rr["n_labeled"] for rr in history.rounds])
    metrics.plot_curve({strategy.name: (counts, accs)}, pathlib.Path(workdir) / "curve.png",
                       title=f"{data.name} / {net.name} / {strategy.name}")
    if verbose and history.summary().get("aubc") is not None:
      print(f"AUBC {history.summary()['aubc']:.4f}  F-acc {history.summary()['f_acc']:.4f}  "
            f"({history.wall_seconds:.1f}s) -> {pathlib.Path(workdir) / 'history.json'}",
            flush=True)
  return history
