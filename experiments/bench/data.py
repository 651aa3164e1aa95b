"""Data of the benchmark: a synthetic stand-in, or a config's dataset when it is there."""

import os
import pathlib
from collections.abc import Sequence

import numpy as np
from ml_collections import ConfigDict

import jal
from experiments import build
from experiments.bench import timing

__all__ = ["SYNTHETIC_NOTE", "load_images", "synthetic_dataset"]

_REPO = pathlib.Path(__file__).resolve().parents[2]
_SHARED_DATA = _REPO.parent / "shared" / "data"
SYNTHETIC_NOTE = ("synthetic N(0, 1) images with uniform random labels; the cost of a fixed "
                  "number of epochs / a pool pass does not depend on the pixel values")


def synthetic_dataset(n_train: int, n_test: int, shape: Sequence[int] = (28, 28, 1),
                      num_classes: int = 10, seed: int = 0,
                      name: str = "synthetic") -> jal.data.Dataset:
  """A ``Dataset`` of N(0, 1) images with uniform random labels (no validation split)."""
  rng = np.random.default_rng(seed)
  shape = tuple(int(s) for s in shape)
  x_tr = rng.standard_normal((n_train, *shape), dtype=np.float32)
  x_te = rng.standard_normal((n_test, *shape), dtype=np.float32)
  return jal.data.make_dataset(
      x_tr, rng.integers(0, num_classes, n_train), x_tr[:0], np.zeros(0, np.int32),
      x_te, rng.integers(0, num_classes, n_test), num_classes=num_classes, name=name)


def load_images(config: ConfigDict, data_dir: str | None = None) -> tuple[jal.data.Dataset, dict]:
  """Loads ``config``'s dataset through ``experiments.build``, or a synthetic stand-in.

  Directories are tried in order: ``data_dir``, ``$JAL_DATA_DIR``, the checkout's sibling
  ``shared/data``. When none holds the dataset, a synthetic dataset of the same shape
  (60 000 train minus ``val_size``, 10 000 test, 28×28×1, 10 classes) is returned.

  Returns:
    ``(dataset, info)`` with ``info = {"dataset", "source", "data_dir", "pool_size",
    "test_size", ...}``; ``source`` is ``"idx"`` or ``"synthetic"`` (then ``info["note"]``
    says why).
  """
  candidates = [data_dir, os.environ.get(jal.data.DATA_DIR_ENV), str(_SHARED_DATA)]
  errors = []
  for d in dict.fromkeys(c for c in candidates if c):
    try:
      data = build.load_data(config, d)
    except (FileNotFoundError, ValueError) as e:
      errors.append(f"{d}: {type(e).__name__}: {str(e).splitlines()[0]}")
      continue
    info = {"dataset": data.name, "source": "idx", "data_dir": d,
            "pool_size": int(data.x_train.shape[0]), "test_size": int(data.x_test.shape[0])}
    if errors:
      info["skipped_dirs"] = errors
    return data, info
  val = config.data.val_size
  val = jal.data.DEFAULT_VAL_SIZE if val is None else int(val)
  data = synthetic_dataset(60000 - val, 10000, (28, 28, 1), 10, seed=0,
                           name=f"synthetic_{config.data.name}")
  timing.log(f"{config.data.name} not found ({'; '.join(errors) or 'no data directory'}); "
       "using synthetic data of the same shape")
  return data, {"dataset": data.name, "source": "synthetic", "data_dir": None,
                "pool_size": int(data.x_train.shape[0]), "test_size": int(data.x_test.shape[0]),
                "note": f"{config.data.name} unavailable ({'; '.join(errors) or 'no data dir'})"
                        f": {SYNTHETIC_NOTE}; accuracies (and epochs under stop_train_acc) "
                        "are not MNIST's"}
