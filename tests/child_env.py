"""The environment of a test's child Python process (fake-device and multi-process workers)."""

import os
import pathlib

_REPO = pathlib.Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
  """``os.environ`` with the repository first on ``PYTHONPATH`` and ``XLA_FLAGS`` kept but for
  a host device count (the child sets its own through ``jax_num_cpu_devices``); the suite's
  compile options (tests/conftest.py) and XLA cache thus reach the child too."""
  env = dict(os.environ, **extra)
  env["PYTHONPATH"] = str(_REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  if flags:
    env["XLA_FLAGS"] = " ".join(flags)
  else:
    env.pop("XLA_FLAGS", None)
  return env
