"""The `Dataset` container, split helpers, pixel standardisation and validation.

Every loader in `jal.data` returns a `Dataset` built with `make_dataset`, whose
images are float32 ``[n, H, W, C]`` standardised with the *train* split's
statistics (`standardize`) and whose labels are int32 ``[n]`` in
``[0, num_classes)`` (`validate_labels`).
"""

import itertools
from typing import NamedTuple

import numpy as np

__all__ = [
  "DIGITS_TEST_SIZE",
  "DIGITS_VAL_SIZE",
  "Dataset",
  "load_digits",
  "make_dataset",
  "random_split",
  "standardize",
  "validate_labels",
]

DIGITS_TEST_SIZE = 360
DIGITS_VAL_SIZE = 180
_DIGITS_MAX_VALUE = 16.0  # scikit-learn's digits pixels are integers in 0..16.


class Dataset(NamedTuple):
  """An image-classification dataset with fixed train / val / test splits.

  Attributes:
    x_train: ``[n, H, W, C]`` float32 standardised images.
    y_train: ``[n]`` int32 labels in ``[0, num_classes)``.
    x_val: ``[n_val, H, W, C]`` float32 images.
    y_val: ``[n_val]`` int32 labels.
    x_test: ``[n_test, H, W, C]`` float32 images.
    y_test: ``[n_test]`` int32 labels.
    num_classes: number of classes ``K``.
    name: dataset name, e.g. ``"mnist"``.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  name: str


def validate_labels(y, num_classes: int, *, what: str = "labels") -> np.ndarray:
  """Checks that ``y`` is a 1-D integer label array with values in ``[0, num_classes)``.

  Args:
    y: ``[n]`` array-like of integer labels.
    num_classes: number of classes ``K`` (a positive int).
    what: name of the array used in error messages.

  Returns:
    ``y`` as an ``[n]`` int32 array (no copy when it already is one).

  Raises:
    TypeError: if ``num_classes`` is not an int.
    ValueError: if ``num_classes`` is not positive, ``y`` is not 1-D,
      not of an integer dtype, or holds values outside ``[0, num_classes)``.
  """
  if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
    raise TypeError(f"num_classes must be an int, got {num_classes!r}")
  if num_classes < 1:
    raise ValueError(f"num_classes must be >= 1, got {num_classes}")
  arr = np.asarray(y)
  if arr.ndim != 1:
    raise ValueError(f"{what} must be 1-D [n], got shape {arr.shape}")
  if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(f"{what} must have an integer dtype, got {arr.dtype}")
  bad = (arr < 0) | (arr >= num_classes)
  if np.any(bad):
    bad_values = np.unique(arr[bad])
    shown = ", ".join(str(int(v)) for v in bad_values[:10])
    more = f" (and {bad_values.size - 10} more)" if bad_values.size > 10 else ""
    raise ValueError(
      f"{what} must be in [0, {num_classes}) (num_classes={num_classes}); "
      f"{int(bad.sum())} of {arr.size} are out of range, values: {shown}{more}"
    )
  return arr.astype(np.int32, copy=False)


def make_dataset(
  x_train,
  y_train,
  x_val,
  y_val,
  x_test,
  y_test,
  *,
  num_classes: int,
  name: str,
) -> Dataset:
  """Builds a `Dataset` after validating shapes and labels.

  Images are cast to float32 and labels to int32 (no copy when already so).

  Args:
    x_train: ``[n, H, W, C]`` images.
    y_train: ``[n]`` integer labels.
    x_val: ``[n_val, H, W, C]`` images.
    y_val: ``[n_val]`` integer labels.
    x_test: ``[n_test, H, W, C]`` images.
    y_test: ``[n_test]`` integer labels.
    num_classes: number of classes ``K``.
    name: dataset name.

  Returns:
    The validated `Dataset`.

  Raises:
    ValueError: if an image array is not 4-D, image shapes differ between
      splits, the number of images and labels of a split differ, or labels
      are invalid (see `validate_labels`).
  """
  splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
  out = {}
  image_shape = None
  for split, (x, y) in splits.items():
    x = np.asarray(x)
    if x.ndim != 4:
      raise ValueError(f"x_{split} must be 4-D [n, H, W, C], got shape {x.shape}")
    if image_shape is None:
      image_shape = x.shape[1:]
    elif x.shape[1:] != image_shape:
      raise ValueError(
        f"x_{split} has image shape {x.shape[1:]} but x_train has {image_shape}"
      )
    y = validate_labels(y, num_classes, what=f"y_{split}")
    if x.shape[0] != y.shape[0]:
      raise ValueError(
        f"x_{split} has {x.shape[0]} examples but y_{split} has {y.shape[0]} labels"
      )
    out[f"x_{split}"] = x.astype(np.float32, copy=False)
    out[f"y_{split}"] = y
  return Dataset(**out, num_classes=int(num_classes), name=str(name))


def random_split(n: int, sizes, seed: int) -> list[np.ndarray]:
  """Partitions ``range(n)`` at random into disjoint index sets.

  Args:
    n: number of items.
    sizes: sizes of the first ``len(sizes)`` parts; the remaining
      ``n - sum(sizes)`` indices form the last part.
    seed: seed of the permutation (`np.random.default_rng`).

  Returns:
    ``len(sizes) + 1`` sorted int64 index arrays, e.g. ``[val, rest]`` for
    ``sizes=(n_val,)``.

  Raises:
    ValueError: if a size is negative or the sizes sum to more than ``n``.
  """
  sizes = [int(s) for s in sizes]
  if any(s < 0 for s in sizes) or sum(sizes) > n:
    raise ValueError(f"split sizes {sizes} must be >= 0 and sum to at most n={n}")
  perm = np.random.default_rng(seed).permutation(n)
  bounds = np.cumsum([0, *sizes])
  parts = [perm[a:b] for a, b in itertools.pairwise(bounds)]
  parts.append(perm[bounds[-1]:])
  return [np.sort(p) for p in parts]


def _stats(x: np.ndarray, max_value: float) -> tuple[np.ndarray, np.ndarray]:
  """Mean and std of ``x / max_value``: scalars for C == 1, ``[C]`` otherwise."""
  channels = x.shape[-1]
  groups = [x] if channels == 1 else [x[..., c] for c in range(channels)]
  means, stds = [], []
  for g in groups:
    if g.dtype == np.uint8:
      # Exact and allocation-free statistics from the 256-bin histogram.
      hist = np.bincount(g.reshape(-1), minlength=256).astype(np.float64)
      values = np.arange(256, dtype=np.float64) / max_value
      total = hist.sum()
      mean = float(hist @ values / total)
      var = float(hist @ np.square(values - mean) / total)
    else:
      g64 = np.asarray(g, dtype=np.float64) / max_value
      mean, var = float(g64.mean()), float(g64.var())
    means.append(mean)
    stds.append(np.sqrt(var) if var > 1e-24 else 1.0)
  return np.asarray(means), np.asarray(stds)


def standardize(x_train, *others, max_value: float = 255.0) -> tuple[np.ndarray, ...]:
  """Scales images to ``[0, 1]`` and standardises them with train statistics.

  Pixels are divided by ``max_value`` (255 for uint8), then shifted and scaled by
  the train split's global mean and std: one scalar each for a single channel,
  one per channel otherwise. The same constants are applied to ``others``.

  Args:
    x_train: ``[n, H, W, C]`` raw images (uint8 or numeric) of the train split.
    *others: further ``[m, H, W, C]`` raw image arrays (val, test).
    max_value: value mapped to 1.0 before standardising.

  Returns:
    Tuple of new float32 arrays, ``(x_train, *others)``, same shapes.

  Raises:
    ValueError: if ``x_train`` is empty or not 4-D.
  """
  x_train = np.asarray(x_train)
  if x_train.ndim != 4 or x_train.shape[0] == 0:
    raise ValueError(f"x_train must be a non-empty [n, H, W, C] array, got {x_train.shape}")
  mean, std = _stats(x_train, max_value)
  scale = (1.0 / (max_value * std)).astype(np.float32)
  shift = (-mean / std).astype(np.float32)
  if x_train.shape[-1] == 1:
    scale, shift = scale.reshape(()), shift.reshape(())
  result = []
  for x in (x_train, *others):
    out = np.asarray(x).astype(np.float32)  # Always a fresh array.
    out *= scale
    out += shift
    result.append(out)
  return tuple(result)


def load_digits(
  *,
  val_size: int | None = None,
  test_size: int = DIGITS_TEST_SIZE,
  seed: int = 0,
) -> Dataset:
  """Loads scikit-learn's embedded 8x8 digits (1797 images, 10 classes, no download).

  The train / val / test split is drawn at random from ``seed``.

  Args:
    val_size: number of validation images (default `DIGITS_VAL_SIZE` = 180).
    test_size: number of test images (default `DIGITS_TEST_SIZE` = 360).
    seed: seed of the split.

  Returns:
    `Dataset` named ``"digits"`` with ``[n, 8, 8, 1]`` images.
  """
  from sklearn.datasets import load_digits as _sk_load_digits  # pylint: disable=import-outside-toplevel

  val_size = DIGITS_VAL_SIZE if val_size is None else val_size
  bunch = _sk_load_digits()
  x = bunch.images.astype(np.uint8)[..., None]  # Values are integers 0..16.
  y = bunch.target.astype(np.int32)
  test_idx, val_idx, train_idx = random_split(len(y), (test_size, val_size), seed)
  x_train, x_val, x_test = standardize(
    x[train_idx], x[val_idx], x[test_idx], max_value=_DIGITS_MAX_VALUE
  )
  return make_dataset(
    x_train, y[train_idx], x_val, y[val_idx], x_test, y[test_idx],
    num_classes=10, name="digits",
  )
