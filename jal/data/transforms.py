"""Seeded dataset transforms: class imbalance, long tails and label noise.

All functions are pure numpy, never mutate their inputs, and return either the
indices of the examples to keep or new labels, so that a run can be reproduced
from ``(seed, arguments)``. Apply them with `apply_to_train`.
"""

from typing import NamedTuple

import numpy as np

from jal.data.dataset import Dataset, validate_labels

__all__ = [
  "ClassImbalance",
  "apply_to_train",
  "class_imbalance",
  "keep_probability_imbalance",
  "long_tail",
  "long_tail_counts",
  "noisy_labels",
]


class ClassImbalance(NamedTuple):
  """Result of `class_imbalance`.

  Attributes:
    indices: ``[m]`` sorted int64 indices of the kept examples.
    affected_classes: ``[k]`` sorted int64 ids of the classes that were thinned.
  """

  indices: np.ndarray
  affected_classes: np.ndarray


def _check_fraction(value: float, what: str) -> float:
  value = float(value)
  if not 0.0 <= value <= 1.0:
    raise ValueError(f"{what} must be in [0, 1], got {value}")
  return value


def _labels(y, num_classes: int | None) -> tuple[np.ndarray, int]:
  """Validates ``y`` and infers ``num_classes`` (``max(y) + 1``) when None."""
  arr = np.asarray(y)
  if num_classes is None:
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
      raise ValueError(
        f"labels must be a non-empty 1-D integer array, got {arr.dtype} {arr.shape}"
      )
    num_classes = int(arr.max()) + 1
  return validate_labels(arr, num_classes), int(num_classes)


def keep_probability_imbalance(y, seed: int, probs=None) -> np.ndarray:
  """Keeps each example of class ``c`` independently with probability ``probs[c]``.

  The default ``probs[c] = 0.1 * (c + 1)`` is the CIFAR10-imb protocol of
  DeepAL+ (class 0 keeps ~10%, class 9 keeps all).

  Args:
    y: ``[n]`` integer labels.
    seed: seed of the Bernoulli draws.
    probs: ``[K]`` keep probabilities in ``[0, 1]``; default
      ``0.1 * (c + 1)`` for ``K = max(y) + 1 <= 10`` classes.

  Returns:
    ``[m]`` sorted int64 indices of the kept examples.

  Raises:
    ValueError: on invalid labels or probabilities, or when the default is
      asked for more than 10 classes.
  """
  if probs is None:
    y, num_classes = _labels(y, None)
    if num_classes > 10:
      raise ValueError(
        f"default probs 0.1*(c+1) exceed 1 for {num_classes} classes; pass probs"
      )
    probs = 0.1 * (np.arange(num_classes) + 1)
  else:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
      raise ValueError(f"probs must be a non-empty 1-D [K] array, got shape {probs.shape}")
    if np.any(~np.isfinite(probs)) or np.any((probs < 0) | (probs > 1)):
      raise ValueError(f"probs must be in [0, 1], got {probs}")
    y, num_classes = _labels(y, probs.size)
  rng = np.random.default_rng(seed)
  keep = rng.random(y.shape[0]) < probs[y]
  return np.flatnonzero(keep).astype(np.int64)


def long_tail_counts(class_counts, imbalance_ratio: float) -> np.ndarray:
  """Per-class sizes ``n_c = floor(n_max * r ** (-c / (K - 1)))``, capped at the counts."""
  counts = np.asarray(class_counts, dtype=np.int64)
  k = counts.size
  n_max = int(counts.max())
  exponent = np.arange(k) / max(k - 1, 1)
  # Dividing by r ** e (and a 1e-9 guard) keeps e.g. 5000 / 100 exactly 50.
  target = np.floor(n_max / np.power(float(imbalance_ratio), exponent) + 1e-9)
  return np.minimum(target.astype(np.int64), counts)


def long_tail(y, imbalance_ratio: float, seed: int, num_classes: int | None = None) -> np.ndarray:
  """Subsamples a long-tailed (exponentially decaying) class profile.

  Class ``c`` keeps ``n_c = floor(n_max * r ** (-c / (K - 1)))`` examples
  drawn without replacement, ``n_max`` being the largest class size and ``r``
  the ``imbalance_ratio`` (``n_0 / n_{K-1}``). A class smaller than ``n_c``
  keeps all its examples.

  Args:
    y: ``[n]`` integer labels.
    imbalance_ratio: ``r >= 1``; 1 keeps ``n_max`` per class.
    seed: seed of the draws.
    num_classes: ``K``; default ``max(y) + 1``.

  Returns:
    ``[m]`` sorted int64 indices of the kept examples.

  Raises:
    ValueError: if ``imbalance_ratio < 1`` or labels are invalid.
  """
  ratio = float(imbalance_ratio)
  if not np.isfinite(ratio) or ratio < 1.0:
    raise ValueError(f"imbalance_ratio must be a finite number >= 1, got {imbalance_ratio}")
  y, num_classes = _labels(y, num_classes)
  counts = np.bincount(y, minlength=num_classes)
  targets = long_tail_counts(counts, ratio)
  rng = np.random.default_rng(seed)
  kept = [
    rng.choice(np.flatnonzero(y == c), size=int(targets[c]), replace=False)
    for c in range(num_classes)
  ]
  return np.sort(np.concatenate(kept)).astype(np.int64)


def noisy_labels(y, num_classes: int, fraction: float, seed: int) -> np.ndarray:
  """Flips exactly ``round(fraction * n)`` labels, each to a different class.

  The flipped examples are drawn without replacement and each new label is
  uniform over the ``K - 1`` other classes.

  Args:
    y: ``[n]`` integer labels in ``[0, num_classes)``.
    num_classes: ``K``.
    fraction: fraction of labels to flip, in ``[0, 1]``.
    seed: seed of the draws.

  Returns:
    ``[n]`` new int32 labels (``y`` is not modified).

  Raises:
    ValueError: on invalid arguments, or labels to flip with ``K < 2``.
  """
  fraction = _check_fraction(fraction, "fraction")
  y, num_classes = _labels(y, num_classes)
  n_flip = round(fraction * y.shape[0])
  if n_flip > 0 and num_classes < 2:
    raise ValueError(f"cannot flip labels with num_classes={num_classes} < 2")
  rng = np.random.default_rng(seed)
  idx = rng.choice(y.shape[0], size=n_flip, replace=False)
  shift = rng.integers(1, num_classes, size=n_flip) if n_flip else np.zeros(0, np.int64)
  new = y.copy()
  new[idx] = (y[idx] + shift) % num_classes
  return new


def class_imbalance(
  y,
  num_classes: int,
  seed: int,
  class_fraction: float = 0.3,
  remove_fraction: float = 0.2,
  mode: str = "remove",
) -> ClassImbalance:
  """Thins out a random subset of classes.

  ``round(class_fraction * K)`` classes are drawn at random; in each,
  ``round(remove_fraction * n_c)`` random instances are removed (mode
  ``"remove"``) or only that many are kept (mode ``"keep"``).

  Args:
    y: ``[n]`` integer labels in ``[0, num_classes)``.
    num_classes: ``K``.
    seed: seed of the draws.
    class_fraction: fraction of classes affected, in ``[0, 1]``.
    remove_fraction: fraction of an affected class removed (or kept), in ``[0, 1]``.
    mode: ``"remove"`` or ``"keep"``.

  Returns:
    `ClassImbalance` with the kept indices and the affected classes.

  Raises:
    ValueError: on invalid fractions, mode or labels.
  """
  class_fraction = _check_fraction(class_fraction, "class_fraction")
  remove_fraction = _check_fraction(remove_fraction, "remove_fraction")
  if mode not in ("remove", "keep"):
    raise ValueError(f"mode must be 'remove' or 'keep', got {mode!r}")
  y, num_classes = _labels(y, num_classes)
  rng = np.random.default_rng(seed)
  n_affected = round(class_fraction * num_classes)
  affected = np.sort(rng.choice(num_classes, size=n_affected, replace=False)).astype(np.int64)
  keep = np.ones(y.shape[0], dtype=bool)
  for c in affected:
    members = np.flatnonzero(y == c)
    n_sel = round(remove_fraction * members.size)
    chosen = rng.choice(members, size=n_sel, replace=False)
    if mode == "remove":
      keep[chosen] = False
    else:
      keep[members] = False
      keep[chosen] = True
  return ClassImbalance(np.flatnonzero(keep).astype(np.int64), affected)


def apply_to_train(dataset: Dataset, indices=None, labels=None) -> Dataset:
  """Returns a new `Dataset` with its train split relabelled and / or subset.

  ``labels`` (for the full train split) are applied first, then ``indices``.
  Val and test splits are unchanged.

  Args:
    dataset: the source `Dataset`.
    indices: ``[m]`` integer indices into the train split to keep, or None.
    labels: ``[n]`` replacement train labels, or None.

  Returns:
    The new `Dataset` (arrays are fresh copies when changed).

  Raises:
    ValueError: if ``labels`` has the wrong length or invalid values, or
      ``indices`` is not a 1-D integer array within ``[0, n)``.
  """
  n = dataset.y_train.shape[0]
  x, y = dataset.x_train, dataset.y_train
  if labels is not None:
    y = validate_labels(labels, dataset.num_classes, what="labels").copy()
    if y.shape[0] != n:
      raise ValueError(f"labels has {y.shape[0]} entries but the train split has {n}")
  if indices is not None:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
      raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
      raise ValueError(f"indices must be in [0, {n}), got range [{idx.min()}, {idx.max()}]")
    x, y = x[idx], y[idx]
  return dataset._replace(x_train=x, y_train=y)
