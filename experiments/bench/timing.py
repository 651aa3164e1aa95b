"""The benchmark timer: every measurement of ``experiments.bench`` (sections, ``scaling``,
``rambo_speed``) goes through these functions.

* ``time_jit``: a jittable function compiled ahead of time, then warm-up and timed runs;
* ``time_call``: a Python-level function (``jal.fit``): a first (compiling) call, then timed
  calls, best reported;
* ``seconds``: one blocking call.
"""

import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["guarded", "loadavg", "log", "seconds", "time_call", "time_jit"]


def log(msg: str) -> None:
  """Progress on stderr (stdout carries the JSON)."""
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


def guarded(what: str, fn: Callable[..., dict], *args, **kwargs) -> dict:
  """Returns ``fn(*args, **kwargs)``; on an exception logs the traceback and returns
  ``{"error": "<type>: <first line>"}`` instead."""
  try:
    return fn(*args, **kwargs)
  except Exception as e:  # One failing measurement must not sink the rest.
    log(f"{what} FAILED:\n{traceback.format_exc()}")
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return {"error": f"{type(e).__name__}: {first}"}


def loadavg() -> list[float]:
  """The 1, 5 and 15 minute load averages, rounded."""
  return [round(v, 2) for v in os.getloadavg()]


def seconds(fn: Callable[[], Any]) -> float:
  """Seconds of one blocking call of ``fn()`` (compile included unless already compiled)."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0
