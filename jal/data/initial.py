"""Initial labeled sets: uniform (the AL loop's default) or BRAL-T's "twisted" sets.

BRAL-T App. C.4 (Table 8, Fig. 7) sorts the classes of the pool by their number of examples;
the first half are the *main* classes, the rest the *rare* ones (CIFAR10-imb: 5 and 5), and
draws the initial set of 1,000 as

* ``twisted_main``: 50 from the rare classes + 950 from the main classes;
* ``twisted_rare``: 50 from the main classes + 950 from the rare classes;

each part uniformly at random over the rows of its classes (so the part follows the pool's
class proportions within it). ``minor_fraction`` = 50 / 1,000 is the share of the small part.
Ties in the class counts are broken by class id (a lower id counts as larger), so on a
balanced pool the main classes are ``0 … ⌊K/2⌋ − 1``.
"""

from typing import NamedTuple

import jax
import numpy as np

__all__ = ["INITIAL_SETS", "InitialSet", "main_and_rare_classes", "twisted_initial_mask"]

INITIAL_SETS = ("random", "twisted_main", "twisted_rare")


class InitialSet(NamedTuple):
  """How the initial labeled set is drawn.

  Attributes:
    mode: one of ``INITIAL_SETS``.
    minor_fraction: share of the small part of a twisted set (BRAL-T: 50 / 1,000).
  """
  mode: str = "random"
  minor_fraction: float = 0.05

  def validate(self) -> "InitialSet":
    """Returns ``self``; raises ``ValueError`` for an unknown mode or a fraction off [0, 1]."""
    if self.mode not in INITIAL_SETS:
      raise ValueError(f"initial set must be one of {INITIAL_SETS}, got {self.mode!r}")
    if not 0.0 <= float(self.minor_fraction) <= 1.0:
      raise ValueError(f"minor_fraction must be in [0, 1], got {self.minor_fraction}")
    return self


def main_and_rare_classes(y, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """``(main, rare)`` class ids: the ``⌊K/2⌋`` most frequent classes of ``y`` and the rest."""
  counts = np.bincount(np.asarray(y), minlength=num_classes)
  order = np.argsort(-counts, kind="stable")
  return np.sort(order[: num_classes // 2]), np.sort(order[num_classes // 2:])


def twisted_initial_mask(key: jax.Array, y, init_size: int, mode: str, num_classes: int,
                         minor_fraction: float = 0.05) -> np.ndarray:
  """A ``[n]`` bool mask of a twisted initial set (BRAL-T Table 8).

  Args:
    key: PRNG key.
    y: ``[n]`` pool labels.
    init_size: ``|L₀|``.
    mode: ``"twisted_main"`` or ``"twisted_rare"``.
    num_classes: ``K``.
    minor_fraction: share of the small part, ``round(minor_fraction · |L₀|)`` rows.

  Raises:
    ValueError: for another mode, or when a part's classes hold too few rows.
  """
  InitialSet(mode, minor_fraction).validate()
  if mode == "random":
    raise ValueError("twisted_initial_mask draws twisted sets; use jal.initial_mask")
  y = np.asarray(y)
  main, rare = main_and_rare_classes(y, num_classes)
  n_minor = int(round(float(minor_fraction) * init_size))
  small, large = (rare, main) if mode == "twisted_main" else (main, rare)
  mask = np.zeros(y.shape[0], bool)
  for k, classes, size in zip(jax.random.split(key), (small, large),
                              (n_minor, init_size - n_minor)):
    rows = np.flatnonzero(np.isin(y, classes))
    if rows.size < size:
      raise ValueError(f"{mode}: classes {classes.tolist()} hold {rows.size} rows, fewer than "
                       f"the {size} the initial set takes from them")
    mask[rows[np.asarray(jax.random.permutation(k, rows.size))[:size]]] = True
  return mask
