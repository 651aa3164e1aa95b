"""Shared pytest fixtures and strict numerics for the jal test suite."""

import os
import pathlib
import shutil
import tempfile

from tests.compile_options import use_suite_compile_options

# One persistent XLA compilation cache per test run, in a temporary folder: the xdist workers
# and every subprocess (binaries, fake-device and multi-process workers) inherit it through the
# environment, so a program compiled by one process is read back by the others instead of being
# compiled again. Set before jax is imported (JAX reads JAX_* settings at import); the process
# that made the folder removes it at the end. JAL_TEST_XLA_CACHE="" turns it off.
if "JAL_TEST_XLA_CACHE" not in os.environ:
  os.environ["JAL_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="jal-test-xla-")
  os.environ["JAL_TEST_XLA_CACHE_OWNER"] = str(os.getpid())
_XLA_CACHE = os.environ["JAL_TEST_XLA_CACHE"]
# The binaries' own cache (--compilation_cache) goes to the same folder, never to ~/.cache.
os.environ.setdefault("JAL_COMPILATION_CACHE", _XLA_CACHE)
if _XLA_CACHE:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _XLA_CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

# XLA:CPU's optimisation level for the suite (tests/compile_options.py).
use_suite_compile_options()

import jax  # noqa: E402
import pytest  # noqa: E402

# Strict numerics: implicit rank promotion is a bug in library code.
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_unconfigure(config):
  if _XLA_CACHE and os.environ.get("JAL_TEST_XLA_CACHE_OWNER") == str(os.getpid()):
    shutil.rmtree(_XLA_CACHE, ignore_errors=True)

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _shared_data_dir() -> pathlib.Path | None:
  env = os.environ.get("JAL_TEST_DATA_DIR")
  candidates = [pathlib.Path(env)] if env else []
  candidates.append(_REPO.parent / "shared" / "data")
  for c in candidates:
    if (c / "mnist").is_dir():
      return c
  return None


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
  """Directory with the real MNIST / Fashion-MNIST IDX files; skips when absent."""
  d = _shared_data_dir()
  if d is None:
    pytest.skip("../shared/data is absent (real MNIST/Fashion-MNIST not available)")
  return d
