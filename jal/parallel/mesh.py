"""Scale-out on JAX's own engine: a ``data`` mesh and placement helpers.

jal never splits work by hand: arrays are *placed* (parameters replicated with
``NamedSharding(mesh, P())``, pool rows and minibatches split along the ``data`` axis with
``NamedSharding(mesh, P('data'))``) and ``jax.jit`` partitions the program and inserts the
collectives. Library functions take ``mesh=None`` (today's single-device behaviour, bit for
bit) or a ``Mesh``; inside, they trace under ``jax.set_mesh(mesh)`` so that traced code can
ask :func:`data_size` and pin intermediates with :func:`constrain_rows` /
:func:`constrain_replicated` (no-ops without a mesh). The mesh is part of ``jit``'s cache key.

Example:
  >>> import jax, jax.numpy as jnp
  >>> mesh = make_mesh(1)
  >>> x = shard_rows(jnp.arange(6.0), mesh)
  >>> x.shape, x.sharding.spec
  ((6,), PartitionSpec('data',))
"""

import contextlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["DATA", "make_mesh", "rows_sharding", "replicated_sharding", "replicate",
           "shard_rows", "padded_size", "pad_rows", "use_mesh", "data_size", "constrain_rows",
           "constrain_replicated"]

DATA = "data"


def make_mesh(num_devices: int | None = None, devices: Any = None) -> Mesh:
  """A 1-D ``Mesh`` with axis ``'data'`` over the first ``num_devices`` devices (all by default).

  Under multi-host JAX, ``jax.devices()`` lists the devices of every process, so the mesh
  spans hosts and ``jit`` communicates across them.
  """
  devs = list(jax.devices() if devices is None else devices)
  n = len(devs) if num_devices is None else int(num_devices)
  if not 1 <= n <= len(devs):
    raise ValueError(f"num_devices must be in [1, {len(devs)}], got {num_devices}")
  return jax.make_mesh((n,), (DATA,), axis_types=(AxisType.Auto,), devices=devs[:n])


def rows_sharding(mesh: Mesh, ndim: int = 1) -> NamedSharding:
  """Leading axis split along ``data``, the other ``ndim - 1`` axes whole."""
  return NamedSharding(mesh, P(DATA, *([None] * (ndim - 1))))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """A full copy on every device of the mesh."""
  return NamedSharding(mesh, P())


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf of ``tree`` (e.g. model parameters) on all devices of ``mesh``."""
  return jax.device_put(tree, replicated_sharding(mesh))


def padded_size(n: int, multiple: int) -> int:
  """The smallest multiple of ``multiple`` that is ``>= n``."""
  return -(-int(n) // int(multiple)) * int(multiple)


def pad_rows(x: Any, n_pad: int, fill: Any = None) -> Any:
  """``x`` ``[n, ...]`` grown to ``[n_pad, ...]``: repeats of the last row, or ``fill``."""
  n = x.shape[0]
  if n_pad == n:
    return x
  xp = jnp if isinstance(x, jax.Array) else np
  if fill is None:
    extra = xp.repeat(x[n - 1:n], n_pad - n, axis=0)
  else:
    extra = xp.full((n_pad - n, *x.shape[1:]), fill, dtype=x.dtype)
  return xp.concatenate([x, extra], axis=0)


def shard_rows(x: Any, mesh: Mesh, fill: Any = None) -> jax.Array:
  """Places ``x`` ``[n, ...]`` with its rows split along ``data``.

  ``n`` is padded to a multiple of the mesh size first (see :func:`pad_rows`); callers mask
  the padding (e.g. mark it labeled so that it is never selected).

  Returns:
    ``[padded_size(n, devices), ...]`` array with sharding ``P('data')``.
  """
  x = pad_rows(x, padded_size(x.shape[0], mesh.shape[DATA]), fill)
  return jax.device_put(x, rows_sharding(mesh, x.ndim))


def use_mesh(mesh: Mesh | None):
  """``jax.set_mesh(mesh)``, or a null context for ``mesh=None``."""
  return contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh)


def data_size() -> int:
  """Size of the ``data`` axis of the mesh being traced under (1 without a mesh)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA not in mesh.axis_names:
    return 1
  return int(mesh.shape[DATA])


def constrain_rows(x: jax.Array) -> jax.Array:
  """Inside ``jit`` under a mesh: pins ``x``'s leading axis to ``data`` (no-op otherwise)."""
  if data_size() == 1:
    return x
  return jax.lax.with_sharding_constraint(x, P(DATA, *([None] * (x.ndim - 1))))


def constrain_replicated(tree: Any) -> Any:
  """Inside ``jit`` under a mesh: pins every leaf to a full copy per device (no-op otherwise)."""
  if data_size() == 1:
    return tree
  return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, P()), tree)
