"""A random-weight MLP over random 8×8 images as a strategy ``Context`` (tests' shared setup)."""

import jax
import jax.numpy as jnp
import numpy as np

import jal


def random_context(rng: np.random.Generator, n: int, num_classes: int, hidden: int,
                   init_seed: int, labeled: np.ndarray | int) -> jal.Context:
  """``n`` standard-normal images from ``rng``, an MLP (``hidden`` units) initialised from
  ``init_seed``, zero labels; ``labeled``: a mask, or a count drawn from ``rng`` after the
  images."""
  net = jal.make_net("mlp", (8, 8, 1), num_classes, hidden=(hidden,))
  v = net.init(jax.random.key(init_seed))
  x = jnp.asarray(rng.standard_normal((n, 8, 8, 1)), jnp.float32)
  if isinstance(labeled, (int, np.integer)):
    mask = np.zeros(n, bool)
    mask[rng.choice(n, int(labeled), replace=False)] = True
    labeled = mask
  return jal.Context(net, v, x, jnp.zeros(n, jnp.int32), jnp.asarray(labeled), num_classes)
