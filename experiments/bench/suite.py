"""Runs the benchmark's sections and returns one JSON-able result (``run_benchmark``)."""

import dataclasses
import datetime
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from experiments.bench import fit, machine, scores, timing
from experiments.bench.settings import SECTIONS, Settings, default_settings, parse_sections

__all__ = ["run_benchmark", "to_json"]


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
      "machine": lambda: machine.machine_section(s.matmul_n, s.matmul_repeats, s.warmup, s.seed),
      "scores": lambda: scores.scores_section(_score_specs(s), warmup=s.warmup, repeats=s.repeats,
                                       seed=s.seed),
      "fit": lambda: fit.fit_section(_fit_specs(s), seed=s.seed),
      "al_round": lambda: protocol.al_round_section(data_dir=data_dir, init_size=s.al_init_size,
                                           budget=s.al_budget, seed=s.seed),
      "fit_many": lambda: fit.fit_many_section(
          s.fit_many_ks, subset=s.fit_many_subset, epochs=s.fit_many_epochs,
          batch_size=s.fit_many_batch, pool_size=s.fit_many_pool, seq_k=s.fit_many_seq_k,
          seed=s.seed),
      "deepal_protocol": lambda: protocol.deepal_protocol_section(
          data_dir=data_dir, rounds=s.deepal_rounds, epochs=s.deepal_epochs),
  }
  todo = list(sections) + (["deepal_protocol"] if protocol == "deepal" else [])
  t_all = time.perf_counter()
  out = {"meta": {
      "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      "argv": list(sys.argv), "backend": jax.default_backend(), "sections": todo,
      "settings": dataclasses.asdict(s), "loadavg_start": timing.loadavg()}}
  for name in todo:
    timing.log(f"section {name} (loadavg {timing.loadavg()})")
    before, t0 = timing.loadavg(), time.perf_counter()
    res = timing.guarded(name, runners[name])
    res.update(wall_seconds=time.perf_counter() - t0, loadavg_before=before,
               loadavg_after=timing.loadavg())
    out[name] = res
    timing.log(f"section {name} done in {res['wall_seconds']:.1f}s")
  out["meta"].update(wall_seconds=time.perf_counter() - t_all, loadavg_end=timing.loadavg())
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
