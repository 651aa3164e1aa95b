"""Execution: the ``data`` mesh and placement helpers, multi-host glue, chunked pool maps and
host threads.

Library functions take ``mesh=None`` (one device) or a ``Mesh`` with a ``data`` axis
(``make_mesh``); arrays are placed and ``jax.jit`` partitions the programs.
"""

from jal.parallel.chunking import chunked_map
from jal.parallel.host_threads import default_workers, map_threads
from jal.parallel.mesh import (
  DATA,
  constrain_replicated,
  constrain_rows,
  data_size,
  make_mesh,
  pad_rows,
  padded_size,
  replicate,
  replicated_sharding,
  rows_sharding,
  shard_rows,
  use_mesh,
)
from jal.parallel.multihost import (
  is_main_process,
  is_multiprocess_mesh,
  maybe_initialize_distributed,
  process_pool,
  process_rows,
  shard_process_rows,
)

__all__ = ["DATA", "make_mesh", "rows_sharding", "replicated_sharding", "replicate",
           "shard_rows", "padded_size", "pad_rows", "use_mesh", "data_size", "constrain_rows",
           "constrain_replicated", "is_main_process", "maybe_initialize_distributed",
           "process_rows", "shard_process_rows", "process_pool", "is_multiprocess_mesh",
           "chunked_map", "default_workers", "map_threads"]
