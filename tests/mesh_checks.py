"""Helpers shared by the fake-device worker scripts (``tests/sharding_worker.py``,
``tests/jal/cluster/sharded_worker.py``): relative differences, output shardings, and the
largest all-gather in a compiled program."""

import re

import numpy as np

from jal import parallel


def max_rel(a, b) -> float:
  """Largest relative difference of ``a`` from ``b``."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b) / (np.abs(b) + 1e-6)))


def spec(a) -> str:
  """The partition spec of ``a``'s sharding, ``"single"`` on one device."""
  return str(a.sharding.spec) if hasattr(a.sharding, "spec") else "single"


def largest_all_gather(jitted, mesh, *args, **kwargs) -> int:
  """Elements of the largest all-gather result in the compiled HLO (0 if none)."""
  with parallel.use_mesh(mesh):
    txt = jitted.lower(*args, **kwargs).compile().as_text()
  sizes = [0]
  for m in re.finditer(r"= \(?([a-z0-9]+)\[([0-9,]*)\][^=]*? all-gather\(", txt):
    sizes.append(int(np.prod([int(d) for d in m.group(2).split(",") if d] or [1])))
  return max(sizes)
