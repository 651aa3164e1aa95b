"""Shared pytest fixtures and strict numerics for the jal test suite."""

import os
import pathlib

import jax
import pytest

# Strict numerics: implicit rank promotion is a bug in library code.
jax.config.update("jax_numpy_rank_promotion", "raise")
# The binaries' persistent compilation cache stays off in tests (nothing written to ~/.cache;
# subprocesses inherit the variable).
os.environ.setdefault("JAL_COMPILATION_CACHE", "")

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
