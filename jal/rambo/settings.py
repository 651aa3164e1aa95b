"""RAMBO's noisy-oracle and class-imbalance settings (SPEC R8) as transforms of a `Dataset`.

Both act on the pool (the train split) only; validation and test stay clean. They wrap the
seeded numpy transforms of ``jal.data.transforms`` and take a JAX PRNG key, from which the
numpy seed is drawn, so a setting is reproduced from ``(key, arguments)``.
"""

import jax
import jax.numpy as jnp

from jal.data.dataset import Dataset
from jal.data.transforms import apply_to_train, class_imbalance, noisy_labels

__all__ = ["IMBALANCE_MODES", "noisy_pool", "imbalanced_pool"]

# Config values of the imbalance setting (``experiments.one_round``'s ``--imbalance``).
IMBALANCE_MODES = ("none", "remove", "keep_only")


def _seed(key: jax.Array) -> int:
  """A 64-bit numpy seed drawn from ``key``."""
  hi, lo = (int(b) for b in jax.random.bits(key, (2,), jnp.uint32))
  return (hi << 32) | lo


def noisy_pool(key: jax.Array, data: Dataset, rate: float = 0.2) -> Dataset:
  """Noisy oracle: flips ``round(rate · n)`` pool labels, each uniformly to another class.

  Args:
    key: PRNG key.
    data: the dataset; only ``y_train [n]`` changes.
    rate: fraction of the pool's labels flipped, in ``[0, 1]``.

  Returns:
    A new `Dataset` with the noisy pool labels (``x_train`` and val/test untouched).
  """
  labels = noisy_labels(data.y_train, data.num_classes, rate, _seed(key))
  return apply_to_train(data, labels=labels)


def imbalanced_pool(key: jax.Array, data: Dataset, class_frac: float = 0.3, remove: float = 0.2,
                    keep_only: bool = False) -> Dataset:
  """Class imbalance: thins ``round(class_frac · K)`` classes of the pool, chosen at random.

  In each chosen class ``round(remove · n_c)`` random instances are removed (the literal
  reading of R8), or, with ``keep_only``, only that many are kept (the flag pending GLISTER's
  protocol).

  Args:
    key: PRNG key.
    data: the dataset; only the train split shrinks.
    class_frac: fraction of the ``K`` classes affected.
    remove: fraction of an affected class removed (or kept with ``keep_only``).
    keep_only: keep ``remove · n_c`` instances instead of removing them.

  Returns:
    A new `Dataset` whose pool holds the kept instances in their original order.
  """
  res = class_imbalance(data.y_train, data.num_classes, _seed(key), class_fraction=class_frac,
                        remove_fraction=remove, mode="keep" if keep_only else "remove")
  return apply_to_train(data, indices=res.indices)
