"""Host threads that keep XLA:CPU busy with independent programs.

XLA:CPU runs the programs launched from *different* Python threads in parallel, while one
thread's launches run one after another — and the small programs of a Sinkhorn loop, a
k-means or a LeNet step on a few hundred rows use about one core each. Work made of many
independent programs (BRAL-T's 30 RL samplings, RAMBO's hundreds of utility trainings) is
therefore spread over a few threads on CPU; accelerators queue programs asynchronously
already, so there the default is one thread. Results do not depend on the thread count:
every program gets the same inputs and keys.

Example:
  >>> map_threads(lambda i: i * i, range(4), workers=2)
  [0, 1, 4, 9]
"""

import concurrent.futures
import os
from collections.abc import Callable, Iterable

import jax

__all__ = ["default_workers", "map_threads"]


def default_workers(workers: int | None = None, cap: int = 8) -> int:
  """``workers`` if given, else the usable CPU cores on a CPU backend and 1 elsewhere."""
  if workers is None:
    if jax.default_backend() != "cpu":
      return 1
    workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count())
  return max(1, min(int(workers or 1), cap))


def map_threads(fn: Callable, items: Iterable, workers: int | None = None) -> list:
  """``[fn(x) for x in items]``, computed by up to ``default_workers(workers)`` threads.

  ``fn`` should block until its result is ready (``jax.block_until_ready``) so that a thread
  is busy for as long as its program runs.
  """
  items = list(items)
  n = min(default_workers(workers), max(len(items), 1))
  if n <= 1:
    return [fn(x) for x in items]
  with concurrent.futures.ThreadPoolExecutor(n) as ex:
    return list(ex.map(fn, items))
