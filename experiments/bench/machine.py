"""The ``machine`` section: versions, devices and measured float32 matmul GFLOP/s."""

import os
import platform

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jal
from experiments.bench import timing

__all__ = ["machine_section", "matmul_gflops"]


def matmul_gflops(n: int, *, dtype=jnp.float32, precision: str | None = None,
                  warmup: int = 1, repeats: int = 5, seed: int = 0) -> dict:
  """Measured GFLOP/s of a jitted ``[n, n] @ [n, n]`` (2n³ flops, best of ``repeats``).

  Args:
    n: matrix side.
    dtype: element type.
    precision: ``None`` (the backend default; TF32 may be used for float32 on NVIDIA GPUs)
      or a ``jax.lax.Precision`` name such as ``"highest"``.
    warmup: untimed runs after compiling.
    repeats: timed runs.
    seed: seed of the random operands.

  Returns:
    ``{"n", "dtype", "precision", "gflops", "compile_seconds", "seconds", ...}``.
  """
  rng = np.random.default_rng(seed)
  a, b = (jnp.asarray(rng.standard_normal((n, n), dtype=np.float32), dtype) for _ in range(2))
  prec = None if precision is None else jax.lax.Precision[precision.upper()]
  t = timing.time_jit(lambda u, v: jnp.matmul(u, v, precision=prec), a, b, warmup=warmup,
               repeats=repeats)
  return {"n": int(n), "dtype": jnp.dtype(dtype).name, "precision": precision or "default",
          "gflops": 2.0 * n ** 3 / t["seconds"] / 1e9, **t}



def machine_section(matmul_n: int = 2048, matmul_repeats: int = 5, warmup: int = 1,
                    seed: int = 0) -> dict:
  """Software versions, devices, CPU count and measured float32 matmul GFLOP/s.

  Reports the backend-default precision and ``Precision.HIGHEST`` (they differ on GPUs where
  float32 matmuls may run in TF32).
  """
  devices = jax.devices()
  out = {
      "jax_version": jax.__version__, "jaxlib_version": _jaxlib_version(),
      "flax_version": flax.__version__, "optax_version": optax.__version__,
      "jal_version": jal.__version__, "python": platform.python_version(),
      "platform": platform.platform(), "backend": jax.default_backend(),
      "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
      "device_kinds": sorted({d.device_kind for d in devices}),
      "devices": [str(d) for d in devices], "cpu_count": os.cpu_count(),
      "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
      "loadavg": timing.loadavg(),
  }
  stats = _memory_stats(devices[0])
  if stats:
    out["device_memory_bytes"] = stats
  for prec in (None, "highest"):
    key = "matmul" if prec is None else f"matmul_{prec}"
    timing.log(f"machine: float32 matmul n={matmul_n} precision={prec or 'default'}")
    out[key] = matmul_gflops(matmul_n, precision=prec, warmup=warmup, repeats=matmul_repeats,
                             seed=seed)
  return out


def _jaxlib_version() -> str | None:
  try:
    import jaxlib
    return jaxlib.__version__
  except (ImportError, AttributeError):
    return None


def _memory_stats(device) -> dict | None:
  try:
    stats = device.memory_stats()
  except Exception:  # CPU devices may not implement it.
    return None
  if not stats:
    return None
  return {k: int(v) for k, v in stats.items() if k in ("bytes_limit", "bytes_in_use",
                                                       "peak_bytes_in_use")}
