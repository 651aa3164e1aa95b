"""Utility samples for RAMBO: random subset pairs, ground-truth utilities, OT targets, Eq. 4.

Every set is a boolean mask ``[n]`` over a fixed pool (S₀ during RAMBO's training), so many
subsets are trained fast with ``fit_subsets`` and OT problems share one cost matrix.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jal.models.net import Net
from jal.train import TrainConfig, fit_subsets

__all__ = ["random_pair_masks", "subset_utilities", "class_distance", "OTTargets",
           "make_ot_targets", "ot_targets", "interpolate_utility", "interpolate_from_distances",
           "pair_distance", "AUG_DISTANCES", "latent_divergence"]

# Distances d(ξ_j, S_i) of Eq. 4 (SPEC R5): Euclidean between pooled φ (REC) or a Sinkhorn
# divergence between the per-element latent embeddings ψ (footnote 1).
AUG_DISTANCES = ("euclidean", "sinkhorn")


@jax.jit(static_argnums=(1, 3))
def random_pair_masks(key: jax.Array, n_pairs: int, allowed: jax.Array,
                      min_size: int = 2) -> tuple[jax.Array, jax.Array]:
  """Pairs of equal-size random subsets of the rows where ``allowed [n]`` is True.

  Each pair draws its size ``m ~ U{min_size..|allowed|}`` (SPEC R2/R3), then two independent
  uniformly random ``m``-subsets.

  Args:
    key: PRNG key.
    n_pairs: ``P``.
    allowed: ``[n]`` bool, the rows subsets may use.
    min_size: smallest set size.

  Returns:
    ``(masks1, masks2)``, each ``[P, n]`` bool.
  """
  n = allowed.shape[0]
  total = jnp.sum(allowed)
  k_size, k1, k2 = jax.random.split(key, 3)
  sizes = jax.random.randint(k_size, (n_pairs,), min_size, total + 1)

  def one(k, m):
    rank = jnp.argsort(jnp.argsort(jnp.where(allowed, jax.random.uniform(k, (n,)), 2.0)))
    return rank < m

  draw = jax.vmap(one)
  return (draw(jax.random.split(k1, n_pairs), sizes),
          draw(jax.random.split(k2, n_pairs), sizes))


@jax.jit(static_argnums=(0,))
def _val_accuracy(net: Net, variables, x_val, y_val):
  def one(v):
    logits, _, _ = net.apply(v, x_val, train=False)
    return jnp.mean(jnp.argmax(logits, -1) == y_val)
  return jax.lax.map(one, variables)


def subset_utilities(key: jax.Array, net: Net, config: TrainConfig, x: jax.Array, y: jax.Array,
                     masks: jax.Array, x_val: jax.Array, y_val: jax.Array,
                     chunk_size: int = 64) -> np.ndarray:
  """Validation accuracy of the classifier trained on each subset (the true utility u).

  Model ``i`` is ``fit(fold_in(key, i), net, config, x, y, masks[i])``, trained by
  ``fit_subsets``; ``chunk_size`` models are evaluated on the validation set together.

  Args:
    key: PRNG key (model ``i`` uses ``fold_in(key, i)``).
    net: classifier f.
    config: its training rule (RAMBO: ``TrainConfig(epochs=100, stop_train_acc=0.99)``).
    x: pool ``[n, H, W, C]``.
    y: pool labels ``[n]``.
    masks: ``[m, n]`` bool subsets (non-empty).
    x_val: ``[v, H, W, C]`` validation inputs.
    y_val: ``[v]`` validation labels.
    chunk_size: models evaluated together.

  Returns:
    ``[m]`` float validation accuracies.
  """
  masks = np.asarray(masks, bool)
  m = masks.shape[0]
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(m))
  out = np.zeros(m, np.float32)
  for start in range(0, m, chunk_size):
    res = fit_subsets(keys[start:start + chunk_size], net, config, x, y,
                      masks[start:start + chunk_size])
    out[start:start + chunk_size] = np.asarray(_val_accuracy(net, res.variables, x_val, y_val))
  return out


def _class_clouds(x: np.ndarray, y: np.ndarray, num_classes: int):
  """Class-conditional point clouds, padded: ``[K, c, d]`` points and ``[K, c]`` weights."""
  counts = np.bincount(y, minlength=num_classes)
  c = max(int(counts.max()), 1)
  pts = np.zeros((num_classes, c, x.shape[1]), np.float32)
  w = np.zeros((num_classes, c), np.float32)
  for k in range(num_classes):
    rows = x[y == k]
    pts[k, :len(rows)] = rows
    w[k, :len(rows)] = 1.0 / max(len(rows), 1)
  return jnp.asarray(pts), jnp.asarray(w)


def _ott():
  """ott-jax's ``geometry`` and ``linear`` modules, imported on first use (as in
  ``jal.bralt.ot``: `import ott` costs ≈ 3 s at every start-up otherwise)."""
  from ott.geometry import geometry
  from ott.solvers import linear
  return geometry, linear


def _sqdist(a: jax.Array, b: jax.Array) -> jax.Array:
  d = (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T)
  return jnp.maximum(d, 0.0)


@jax.jit
def _class_distance(pa, wa, pb, wb, eps):
  geometry, linear = _ott()

  def one(p, a, q, b):
    geom = geometry.Geometry(cost_matrix=_sqdist(p, q), epsilon=eps)
    ok = (jnp.sum(a) > 0) & (jnp.sum(b) > 0)
    a = jnp.where(ok, a, 1.0 / a.shape[0])
    b = jnp.where(ok, b, 1.0 / b.shape[0])
    return jnp.where(ok, linear.solve(geom, a, b).primal_cost, 0.0)

  row = jax.vmap(one, in_axes=(None, None, 0, 0))
  return jax.vmap(row, in_axes=(0, 0, None, None))(pa, wa, pb, wb)


def class_distance(xa, ya, xb, yb, num_classes: int, rel_eps: float = 0.01) -> jax.Array:
  """``[K, K]`` W₂² between the class-conditionals of two labelled clouds (small-ε Sinkhorn).

  Entry ``[a, b]`` compares class ``a`` of the first cloud with class ``b`` of the second; it is
  0 where either class is empty. ``x*`` are ``[n, d]`` features, ``y*`` ``[n]`` int labels; ε is
  ``rel_eps`` times the mean squared distance between the two clouds.
  """
  pa, wa = _class_clouds(np.asarray(xa), np.asarray(ya), num_classes)
  pb, wb = _class_clouds(np.asarray(xb), np.asarray(yb), num_classes)
  eps = rel_eps * jnp.mean(_sqdist(jnp.asarray(xa), jnp.asarray(xb)))
  with jax.numpy_rank_promotion("allow"):  # ott-jax relies on implicit rank promotion
    return _class_distance(pa, wa, pb, wb, eps)


class OTTargets(NamedTuple):
  """Precomputed geometry for label-aware OT between subsets of a pool and S_val."""
  cost_pv: jax.Array   # [n, v] ‖x − x′‖² + D_y[y, y′], pool vs validation
  cost_pp: jax.Array   # [n, n] pool vs pool (debiasing term)
  self_val: jax.Array  # [] OT_ε(S_val, S_val)
  epsilon: jax.Array   # [] ε = 0.1 · mean(cost_pv)
  debiased: bool


def make_ot_targets(x, y, x_val, y_val, num_classes: int, *, rel_eps: float = 0.1,
                    debiased: bool = True) -> OTTargets:
  """Builds the label-aware geometry (SPEC §2.1 REC) for subsets of the pool ``(x, y)``.

  Args:
    x: ``[n, ...]`` pool features (flattened here).
    y: ``[n]`` pool labels.
    x_val: ``[v, ...]`` validation features.
    y_val: ``[v]`` validation labels.
    num_classes: ``K``.
    rel_eps: ε as a fraction of the mean cost.
    debiased: Sinkhorn divergence (True) or plain entropic OT cost.
  """
  xf = jnp.reshape(jnp.asarray(x, jnp.float32), (x.shape[0], -1))
  vf = jnp.reshape(jnp.asarray(x_val, jnp.float32), (x_val.shape[0], -1))
  y, y_val = jnp.asarray(y), jnp.asarray(y_val)
  d_pv = class_distance(xf, y, vf, y_val, num_classes)
  cost_pv = _sqdist(xf, vf) + d_pv[y][:, y_val]
  eps = rel_eps * jnp.mean(cost_pv)
  if not debiased:
    return OTTargets(cost_pv, jnp.zeros((1, 1)), jnp.zeros(()), eps, False)
  d_pp = class_distance(xf, y, xf, y, num_classes)
  d_vv = class_distance(vf, y_val, vf, y_val, num_classes)
  cost_pp = _sqdist(xf, xf) + d_pp[y][:, y]
  cost_vv = _sqdist(vf, vf) + d_vv[y_val][:, y_val]
  uni = jnp.full(vf.shape[0], 1.0 / vf.shape[0])
  geometry, linear = _ott()
  with jax.numpy_rank_promotion("allow"):
    self_val = linear.solve(geometry.Geometry(cost_matrix=cost_vv, epsilon=eps),
                            uni, uni).reg_ot_cost
  return OTTargets(cost_pv, cost_pp, self_val, eps, True)


def ot_targets(geom: OTTargets, masks: jax.Array, chunk_size: int = 64) -> jax.Array:
  """OT(ξ, S_val) for subsets ``masks [m, n]`` of the pool → ``[m]`` (padded, zero weights).

  Not normalised; RAMBO divides all targets by the mean of the offline targets.
  """
  masks = np.asarray(masks, bool)
  m = masks.shape[0]
  out = []
  for start in range(0, m, chunk_size):  # fixed-size chunks: one compile for any m
    part = masks[start:start + chunk_size]
    part = np.concatenate([part, np.ones((chunk_size - part.shape[0], masks.shape[1]), bool)])
    with jax.numpy_rank_promotion("allow"):
      out.append(_ot_targets(geom._replace(debiased=None), jnp.asarray(part),
                             bool(geom.debiased)))
  return jnp.concatenate(out)[:m]


@jax.jit(static_argnums=(2,))
def _ot_targets(geom: OTTargets, masks: jax.Array, debiased: bool) -> jax.Array:
  geometry, linear = _ott()
  v = geom.cost_pv.shape[1]
  b = jnp.full(v, 1.0 / v)

  def one(mask):
    a = mask.astype(jnp.float32) / jnp.maximum(jnp.sum(mask), 1)
    cross = linear.solve(geometry.Geometry(cost_matrix=geom.cost_pv, epsilon=geom.epsilon),
                         a, b).reg_ot_cost
    if not debiased:
      return cross
    self_a = linear.solve(geometry.Geometry(cost_matrix=geom.cost_pp, epsilon=geom.epsilon),
                          a, a).reg_ot_cost
    return cross - 0.5 * self_a - 0.5 * geom.self_val

  return jax.lax.map(one, masks, batch_size=16)


def pair_distance(phi: jax.Array, ref: jax.Array) -> jax.Array:
  """Euclidean distance ``[m]`` between set embeddings ``phi [m, d]`` and one ``ref [d]``."""
  return jnp.sqrt(jnp.sum((phi - ref[None, :]) ** 2, -1) + 1e-12)


def interpolate_from_distances(d_i: jax.Array, d_next: jax.Array, acc_i: jax.Array,
                               acc_next: jax.Array) -> jax.Array:
  """Eq. 4: ``u_j = α·acc_i + (1 − α)·acc_{i+1}``, ``α = d_{j,i+1} / (d_{j,i+1} + d_{j,i})``.

  Args:
    d_i: ``[m]`` distances ``d(ξ_j, S_i) ≥ 0``.
    d_next: ``[m]`` distances ``d(ξ_j, S_{i+1}) ≥ 0``.
    acc_i: accuracy of f trained on S_i.
    acc_next: accuracy of f trained on S_{i+1}.

  Returns:
    ``[m]`` interpolated utilities (α = ½ where both distances are 0).
  """
  total = d_next + d_i
  alpha = jnp.where(total > 0, d_next / jnp.where(total > 0, total, 1.0), 0.5)
  return alpha * acc_i + (1.0 - alpha) * acc_next


def interpolate_utility(phi: jax.Array, phi_i: jax.Array, phi_next: jax.Array,
                        acc_i: jax.Array, acc_next: jax.Array) -> jax.Array:
  """Eq. 4 with Euclidean distances between set embeddings φ (SPEC R5 REC).

  Args:
    phi: ``[m, d]`` embeddings φ(ξ_j) of the new sets.
    phi_i: ``[d]`` φ(S_i).
    phi_next: ``[d]`` φ(S_{i+1}).
    acc_i: accuracy of f trained on S_i.
    acc_next: accuracy of f trained on S_{i+1}.

  Returns:
    ``[m]`` interpolated utilities.

  Example:
    >>> import jax.numpy as jnp
    >>> u = interpolate_utility(jnp.array([[1.0, 0.0]]), jnp.zeros(2), jnp.array([4.0, 0.0]),
    ...                         0.5, 0.9)
    >>> round(float(u[0]), 4)  # d_i = 1, d_{i+1} = 3, α = 0.75
    0.6
  """
  return interpolate_from_distances(pair_distance(phi, phi_i), pair_distance(phi, phi_next),
                                    acc_i, acc_next)


def latent_divergence(h: jax.Array, masks: jax.Array, refs: jax.Array, *, rel_eps: float = 0.1,
                      epsilon: float | jax.Array | None = None,
                      threshold: float = 1e-5) -> jax.Array:
  """Sinkhorn divergences between subsets of a pool in the utility model's latent space.

  For sets given as masks over the pool's per-element embeddings ``h = ψ(pool)``, entry
  ``[j, r]`` is ``OT_ε(ξ_j, R_r) − ½ OT_ε(ξ_j, ξ_j) − ½ OT_ε(R_r, R_r)`` with uniform weights
  on the members (zero on the rest: padding over the fixed pool, one jit for any sizes), cost
  ``‖ψ(x) − ψ(x′)‖²`` and ``OT_ε`` ott-jax's entropic ``reg_ot_cost``. It is 0 for ``ξ = R``
  and clipped below at 0. The debiased form is used so that a set's distance to itself is 0.

  Args:
    h: ``[n, e]`` embeddings of the pool (``SetNet.elements``).
    masks: ``[m, n]`` bool, the sets ξ_j (non-empty).
    refs: ``[r, n]`` bool, the reference sets (e.g. S_i and S_{i+1}; non-empty).
    rel_eps: ε as a fraction of the mean cost over all pool pairs (when ``epsilon`` is None).
    epsilon: explicit ε.
    threshold: Sinkhorn's marginal-error stopping threshold.

  Returns:
    ``[m, r]`` divergences.
  """
  h = jnp.asarray(h, jnp.float32)
  cost = _sqdist(h, h)
  eps = rel_eps * jnp.mean(cost) if epsilon is None else jnp.asarray(epsilon, jnp.float32)
  with jax.numpy_rank_promotion("allow"):  # ott-jax relies on implicit rank promotion
    return _latent_divergence(cost, jnp.asarray(masks), jnp.asarray(refs), eps, threshold)


@jax.jit(static_argnums=(4,))
def _latent_divergence(cost, masks, refs, eps, threshold):
  geometry, linear = _ott()
  uniform = lambda m: m.astype(jnp.float32) / jnp.maximum(jnp.sum(m), 1)
  geom = geometry.Geometry(cost_matrix=cost, epsilon=eps)
  reg_ot = lambda a, b: linear.solve(geom, a, b, threshold=threshold).reg_ot_cost
  b = jax.vmap(uniform)(refs)
  self_b = jax.vmap(lambda w: reg_ot(w, w))(b)

  def one(mask):
    a = uniform(mask)
    cross = jax.vmap(lambda w: reg_ot(a, w))(b)
    return jnp.maximum(cross - 0.5 * reg_ot(a, a) - 0.5 * self_b, 0.0)

  return jax.lax.map(one, masks, batch_size=16)
