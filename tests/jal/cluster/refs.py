"""NumPy references shared by the jal.cluster tests."""

import jax.numpy as jnp
import numpy as np

__all__ = ["factors", "np_kcenter", "np_sq_dists", "np_top_k"]


def np_sq_dists(x, y):
  """``[n, m]`` squared distances in float64."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def factors(n=300, kk=4, dd=6, seed=0):
  """BADGE factors ``a [n, kk]``, ``e [n, dd]`` and the explicit ``g = a ⊗ e`` ``[n, kk·dd]``."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, kk)).astype(np.float32)
  e = rng.normal(size=(n, dd)).astype(np.float32)
  g = (a[:, :, None] * e[:, None, :]).reshape(n, kk * dd)
  return jnp.asarray(a), jnp.asarray(e), jnp.asarray(g)


def np_top_k(scores, labeled, budget):
  """Highest scores among unlabeled rows, ties to the lowest index."""
  s = np.where(np.asarray(labeled), -np.inf, np.asarray(scores, np.float64))
  return np.argsort(-s, kind="stable")[:budget]


def np_kcenter(x, budget, labeled, cand, start=None):
  """Brute-force greedy k-center in float64 (``start``: first-pick scores without labels)."""
  x = np.asarray(x, np.float64)
  avail = cand & ~labeled
  if labeled.any():
    min_d = np_sq_dists(x, x[labeled]).min(1)
  else:
    min_d = np.full(len(x), np.inf)
  out = []
  for t in range(budget):
    scores = start if (t == 0 and not labeled.any()) else min_d
    j = int(np.argmax(np.where(avail, scores, -np.inf)))
    out.append(j)
    avail[j] = False
    min_d = np.minimum(min_d, ((x - x[j]) ** 2).sum(1))
  return np.array(out)
