"""Multi-host glue: distributed initialisation, which process writes, and a pool whose rows
each process holds only in part (every array still global to ``jax.jit``)."""

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jal.parallel.mesh import DATA, pad_rows, padded_size, rows_sharding

__all__ = ["is_main_process", "maybe_initialize_distributed", "process_rows",
           "shard_process_rows", "process_pool", "is_multiprocess_mesh"]


def is_main_process() -> bool:
  """True on process 0, the only one that writes files and logs."""
  return jax.process_index() == 0


def maybe_initialize_distributed(enabled: bool | None = None) -> bool:
  """Calls ``jax.distributed.initialize()`` when asked (argument, or env ``JAL_DISTRIBUTED=1``).

  Coordinator address, process count and id come from the cluster auto-detection of
  ``jax.distributed`` (SLURM, Open MPI, Cloud TPU) or from the environment:
  ``JAX_COORDINATOR_ADDRESS`` (read by JAX itself) and ``JAX_NUM_PROCESSES`` /
  ``JAX_PROCESS_ID`` (read here and passed on: jax 0.10 does not read them). Must run before
  any other JAX call. Returns whether it initialised.
  """
  if enabled is None:
    enabled = os.environ.get("JAL_DISTRIBUTED", "0").lower() in ("1", "true", "yes")
  if enabled:
    kw = {k: int(os.environ[v]) for k, v in (("num_processes", "JAX_NUM_PROCESSES"),
                                             ("process_id", "JAX_PROCESS_ID"))
          if os.environ.get(v)}
    jax.distributed.initialize(**kw)
  return bool(enabled)


def process_rows(n: int, mesh: Mesh) -> tuple[int, int]:
  """``[start, stop)`` of the rows of a padded ``[n_pad]`` pool this process must load.

  The pool is padded to a multiple of the mesh size; each process owns the rows held by its
  addressable devices (contiguous for a mesh built by :func:`make_mesh`).
  """
  n_pad = padded_size(n, mesh.shape[DATA])
  idx = rows_sharding(mesh).addressable_devices_indices_map((n_pad,))
  starts = [s[0].start or 0 for s in idx.values()]
  stops = [n_pad if s[0].stop is None else s[0].stop for s in idx.values()]
  return min(starts), max(stops)


def shard_process_rows(local: Any, n: int, mesh: Mesh) -> jax.Array:
  """Builds the global ``[n_pad, ...]`` row-sharded array from this process's slice only.

  Args:
    local: rows ``process_rows(n, mesh)`` of the padded pool, already padded where they run
      past ``n`` (see :func:`pad_rows`).
    n: the unpadded global number of rows.
    mesh: the ``data`` mesh.

  Returns:
    A global array with sharding ``P('data')``; no process ever holds the whole pool.
  """
  n_pad = padded_size(n, mesh.shape[DATA])
  return jax.make_array_from_process_local_data(rows_sharding(mesh, local.ndim), local,
                                                (n_pad, *local.shape[1:]))


def is_multiprocess_mesh(mesh: Mesh | None) -> bool:
  """True when ``mesh`` spans devices of more than one JAX process."""
  return mesh is not None and len({d.process_index for d in mesh.devices.flat}) > 1


def process_pool(arrays: tuple[Any, ...], mesh: Mesh) -> tuple[jax.Array, ...]:
  """Global row-sharded ``[n_pad, ...]`` arrays built from this process's rows only.

  Only rows ``process_rows(n, mesh)`` of each array are indexed (``a[start:stop]``), so a
  ``np.memmap`` or any lazily sliced array-like is read only there; the padding repeats the
  global last row, exactly as :func:`shard_rows` pads. The global arrays then equal
  ``shard_rows(a, mesh)`` of a single process.

  Args:
    arrays: array-likes sharing the leading dimension ``n``.
    mesh: the ``data`` mesh (spanning every process).

  Returns:
    One global array per input, sharding ``P('data')``, shape ``[padded_size(n, devices), ...]``.
  """
  n = arrays[0].shape[0]
  start, stop = process_rows(n, mesh)
  lo = min(start, n - 1)  # a process whose rows are all padding still needs the last row
  return tuple(shard_process_rows(pad_rows(np.asarray(a[lo:min(stop, n)]), stop - start), n,
                                  mesh) for a in arrays)
