"""Per-example scores: EL2N, GraNd, margin, entropy, least confidence, BALD, SuperLoss σ*.

Uncertainty scores follow one convention: **larger means more informative** (so every
strategy takes a top-k). ``margin_score`` is therefore ``-(p₍₁₎ − p₍₂₎)``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jal import parallel
from jal.models import per_example, taps
from jal.models.net import Net, Variables
from jal.parallel.chunking import chunked_map

__all__ = [
    "check_labels",
    "lambertw0", "superloss_sigma", "superloss_weights", "el2n_from_logits", "el2n", "grand",
    "margin_score", "entropy_score", "least_confidence_score", "bald_score", "mc_probs",
]

_INV_E = 1.0 / math.e
_INV_E_HI = float(np.float32(_INV_E))  # 1/e = hi + lo, hi exact in float32
_INV_E_LO = _INV_E - _INV_E_HI


def lambertw0(z: jax.Array, iters: int = 8) -> jax.Array:
  """Principal branch W₀ of the Lambert W function (``w·eʷ = z``) for ``z ≥ −1/e``.

  ``jax.scipy.special`` has none. The initial guess is the branch-point series
  ``−1 + p − p²/3 + 11p³/72 − 43p⁴/540 + 769p⁵/17280`` with ``p = √(2(1 + e·z))`` near
  ``−1/e`` and Winitzki's approximation elsewhere, refined by ``iters`` Halley steps; for
  ``p < 0.1`` the series itself is returned (Halley loses digits there in float32).

  Args:
    z: any shape, values ``≥ −1/e`` (smaller values are clamped to ``−1/e``).
    iters: Halley iterations.

  Returns:
    ``W₀(z)``, same shape and dtype.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(lambertw0(jnp.float32(1.0))), 5)  # the omega constant
    0.56714
  """
  z = jnp.maximum(z, -_INV_E)
  # 1 + e·z = e·(z + 1/e) with 1/e = hi + lo: z + hi is exact near −1/e (Sterbenz), and the
  # barrier keeps XLA from folding hi + lo back into one float32 constant.
  dist = jax.lax.optimization_barrier(z + _INV_E_HI) + _INV_E_LO
  p = jnp.sqrt(jnp.maximum(2.0 * math.e * dist, 0.0))
  branch = -1.0 + p * (1.0 + p * (-1.0 / 3.0 + p * (11.0 / 72.0 + p * (
      -43.0 / 540.0 + p * (769.0 / 17280.0)))))
  lz = jnp.log1p(jnp.maximum(z, -0.2649))
  winitzki = lz * (1.0 - jnp.log1p(lz) / (2.0 + lz))
  w = jnp.where(z < -0.2649, branch, winitzki)

  def halley(_, w):
    ew = jnp.exp(w)
    f = w * ew - z
    wp1 = w + 1.0
    denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
    step = jnp.where(jnp.abs(denom) > 0, f / jnp.where(denom == 0, 1.0, denom), 0.0)
    return w - step

  w = jax.lax.fori_loop(0, iters, halley, w)
  # Within p < 0.1 of the branch point (|z + 1/e| < 1.9e-3) the series is exact to ~3e-8
  # (next term ≈ 0.025·p⁶), while Halley's residual w·eʷ − z loses its digits to cancellation
  # there (forward error ~ ulp·e/p): keep the series.
  return jnp.where(p < 0.1, branch, w)


def superloss_sigma(loss: jax.Array, tau: float, lam: float) -> jax.Array:
  """SuperLoss's closed-form confidence σ* = exp(−W₀(½·max(−2/e, (ℓ − τ)/λ))).

  σ* minimises ``(ℓ − τ)σ + λ(log σ)²`` over σ > 0 (Castells et al. 2020); it lies in (0, e],
  equals 1 at ℓ = τ and e once ℓ − τ ≤ −2λ/e.

  Args:
    loss: per-example task losses, any shape.
    tau: threshold τ (BRAL-T: log K).
    lam: regulariser λ > 0.

  Returns:
    σ*, same shape as ``loss``.
  """
  beta = (loss - tau) / lam
  return jnp.exp(-lambertw0(0.5 * jnp.maximum(-2.0 * _INV_E, beta)))


def superloss_weights(loss: jax.Array, tau: float, lam: float) -> jax.Array:
  """σ* with ``stop_gradient`` (the weights are not differentiated through)."""
  return jax.lax.stop_gradient(superloss_sigma(loss, tau, lam))


def el2n_from_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """EL2N = ‖softmax(logits) − onehot(y)‖₂ (Paul et al. 2021).

  Args:
    logits: ``[n, K]``.
    y: ``[n]`` integer labels.

  Returns:
    ``[n]`` scores.
  """
  p = jax.nn.softmax(logits, axis=-1)
  return jnp.linalg.norm(p - jax.nn.one_hot(y, logits.shape[-1], dtype=p.dtype), axis=-1)


def _el2n(net, variables, x, y, chunk_size):
  def fn(c):
    logits, _, _ = net.apply(variables, c[0], train=False)
    return el2n_from_logits(logits, c[1])
  return chunked_map(fn, (x, y), chunk_size)


_el2n_jit = jax.jit(_el2n, static_argnums=(0, 4))


def check_labels(x, y, num_classes: int) -> None:
  """Raises ``ValueError`` unless ``y`` is ``[n]`` integer labels in ``[0, num_classes)``
  for ``x`` ``[n, ...]`` (traced or multi-process arrays are checked for shape only)."""
  if np.ndim(y) != 1 or np.shape(y)[0] != np.shape(x)[0]:
    raise ValueError(f"y must be [n] = [{np.shape(x)[0]}] labels, got shape {np.shape(y)}")
  if not jnp.issubdtype(jnp.result_type(y), jnp.integer):
    raise ValueError(f"labels must be integers, got dtype {jnp.result_type(y)}")
  if isinstance(y, jax.core.Tracer) or (isinstance(y, jax.Array) and
                                         not y.is_fully_addressable):
    return  # traced by an outer jit, or spread over processes: shapes only
  yy = np.asarray(y)
  if yy.size and (yy.min() < 0 or yy.max() >= num_classes):
    raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                     f"[{yy.min()}, {yy.max()}]")


def _check_chunk(chunk_size) -> int:
  if not (int(chunk_size) == chunk_size and chunk_size >= 1):
    raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
  return int(chunk_size)


def _on_mesh(mesh, fn, variables, *args):
  """Runs ``fn(variables, *args)`` as is, or under ``mesh`` with replicated variables (the
  chunked pool work is then split along ``data``, see ``jal.parallel.chunking.chunked_map``)."""
  if mesh is None:
    return fn(variables, *args)
  with parallel.use_mesh(mesh):
    return fn(parallel.replicate(variables, mesh), *args)


def el2n(net: Net, variables: Variables, x: jax.Array, y: jax.Array,
         chunk_size: int = 1024, *, mesh=None) -> jax.Array:
  """EL2N scores ``[n]`` of ``(x [n, ...], y [n])`` under the model, in eval mode (rows
  split along ``data`` when a ``jal.parallel`` ``mesh`` is given)."""
  check_labels(x, y, net.num_classes)
  return _on_mesh(mesh, lambda v, *a: _el2n_jit(net, v, *a), variables, x, y,
                  _check_chunk(chunk_size))


def _grand(net, variables, x, y, chunk_size):
  def loss_one(params, xi, yi):
    logits, _, _ = net.apply(Variables(params, variables.extra), xi[None], train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yi[None])[0]

  per_example_grad = jax.vmap(jax.grad(loss_one), in_axes=(None, 0, 0))

  def fn(c):
    g = per_example_grad(variables.params, c[0], c[1])
    sq = sum(jnp.sum(jnp.reshape(l, (l.shape[0], -1)) ** 2, axis=1) for l in jax.tree.leaves(g))
    return jnp.sqrt(sq)

  return chunked_map(fn, (x, y), chunk_size)


_grand_jit = jax.jit(_grand, static_argnums=(0, 4))

GRAND_METHODS = ("auto", "layerwise", "vmap")


def _layer_payloads(net, variables, x, eps):
  """Logits of ``x`` and the payload of every tapped layer (``eps`` added at its output)."""
  with taps.recording(eps) as rec:
    logits, _, _ = net.apply(variables, x, train=False)
  return logits, [per_example.payload(t.layer, t.x) for t in rec.taps], rec.out_shapes


def _tapped(net, variables, x) -> tuple[int, list]:
  """Parameter arrays the tapped layers cover (−1: a layer has no layer-wise form) and the
  taps' output shapes, found by tracing ``x`` abstractly."""
  found = []

  def discover():
    try:
      _, loads, shapes = _layer_payloads(net, variables, x, None)
    except NotImplementedError:
      found.append((-1, []))
      return 0
    found.append((sum(p.params for p in loads), shapes))
    return 0

  jax.eval_shape(discover)
  return found[0]


def _grand_layerwise_chunk(net, variables, x, y):
  covered, shapes = _tapped(net, variables, x)
  total = len(jax.tree.leaves(variables.params))
  if covered != total:
    raise NotImplementedError(
        f"{net.name!r} has {total} parameter arrays but jal's tapped layers cover "
        f"{max(covered, 0)}; use grand(..., method='vmap')")
  static = {}

  def loss(eps):
    logits, loads, _ = _layer_payloads(net, variables, x, eps)
    static["loads"] = [p._replace(array=None) for p in loads]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(ce), [p.array for p in loads]

  eps = [jnp.zeros(s.shape, s.dtype) for s in shapes]
  grads, arrays = jax.grad(loss, has_aux=True)(eps)
  sq = sum(per_example.sq_norms(p._replace(array=a), g)
           for p, a, g in zip(static["loads"], arrays, grads))
  return jnp.sqrt(sq)


def _grand_layerwise(net, variables, x, y, chunk_size):
  return chunked_map(lambda c: _grand_layerwise_chunk(net, variables, *c), (x, y), chunk_size)


_grand_layerwise_jit = jax.jit(_grand_layerwise, static_argnums=(0, 4))


def grand(net: Net, variables: Variables, x: jax.Array, y: jax.Array,
          chunk_size: int = 64, *, mesh=None, method: str = "auto") -> jax.Array:
  """GraNd = ‖∇_θ ℓ_CE(x, y)‖₂ per example (Paul et al. 2021), BatchNorm in eval mode.

  ``method="layerwise"`` never forms a per-example gradient of the whole network: one
  backward pass of the chunk's summed loss gives every layer's output gradient, and each
  layer's per-example norm comes from its input and that gradient
  (``jal.models.per_example``); memory is a few activations per example. ``"vmap"`` is the
  reference, ``vmap(grad(loss of one example))``, with memory ``chunk_size × |θ|``.
  ``"auto"`` takes ``"layerwise"`` unless the network has parameters outside jal's tapped
  layers (``jal.models.layers``).

  Args:
    net: the static network.
    variables: model state.
    x: ``[n, H, W, C]`` inputs.
    y: ``[n]`` labels.
    chunk_size: examples per chunk (per device under a mesh).
    mesh: optional ``jal.parallel`` mesh; rows are split along ``data``.
    method: ``"auto"``, ``"layerwise"`` or ``"vmap"``.

  Returns:
    ``[n]`` gradient norms.
  """
  check_labels(x, y, net.num_classes)
  if method not in GRAND_METHODS:
    raise ValueError(f"method must be one of {GRAND_METHODS}, got {method!r}")
  chunk_size = _check_chunk(chunk_size)
  if method == "auto":
    covered = _tapped(net, variables, x[:1])[0]
    method = "layerwise" if covered == len(jax.tree.leaves(variables.params)) else "vmap"
  fn = _grand_layerwise_jit if method == "layerwise" else _grand_jit
  return _on_mesh(mesh, lambda v, *a: fn(net, v, *a), variables, x, y, chunk_size)


def margin_score(probs: jax.Array) -> jax.Array:
  """Negative top-2 margin ``−(p₍₁₎ − p₍₂₎)`` of ``[n, K]`` probabilities (larger = less sure)."""
  top2 = jax.lax.top_k(probs, 2)[0]
  return top2[:, 1] - top2[:, 0]


def entropy_score(probs: jax.Array) -> jax.Array:
  """Predictive entropy ``−Σ p log p`` of ``[n, K]`` probabilities."""
  return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0),
                  axis=-1)


def least_confidence_score(probs: jax.Array) -> jax.Array:
  """``1 − max_k p_k`` of ``[n, K]`` probabilities."""
  return 1.0 - jnp.max(probs, axis=-1)


def bald_score(mc: jax.Array) -> jax.Array:
  """BALD mutual information from MC-dropout probabilities ``[T, n, K]``.

  I(y; θ | x) = H(E_t p_t) − E_t H(p_t) (Houlsby et al. 2011; Gal et al. 2017).
  """
  mean_h = jnp.mean(jax.vmap(entropy_score)(mc), axis=0)
  return entropy_score(jnp.mean(mc, axis=0)) - mean_h


def _mc_probs(net, variables, x, key, samples, chunk_size):
  keys = jax.random.split(key, samples)

  def fn(c):
    def one(k):
      logits, _, _ = net.apply(variables, c[0], train=False, dropout=True, key=k)
      return jax.nn.softmax(logits, -1)
    return jnp.moveaxis(jax.vmap(one)(keys), 0, 1)  # [chunk, T, K]

  return jnp.moveaxis(chunked_map(fn, (x,), chunk_size), 1, 0)


_mc_probs_jit = jax.jit(_mc_probs, static_argnums=(0, 4, 5))


def mc_probs(net: Net, variables: Variables, x: jax.Array, key: jax.Array, samples: int = 10,
             chunk_size: int = 1024, *, mesh=None) -> jax.Array:
  """MC-dropout class probabilities ``[T, n, K]`` with dropout on before the head (the ``n``
  axis split along ``data`` when a ``jal.parallel`` ``mesh`` is given).

  Raises:
    ValueError: if the network has no dropout (``net.dropout == 0``).
  """
  if net.dropout <= 0:
    raise ValueError(f"MC dropout needs a model with dropout > 0; {net.name!r} was built with "
                     "dropout=0 (pass dropout=..., e.g. --dropout=0.25)")
  return _on_mesh(mesh, lambda v, *a: _mc_probs_jit(net, v, *a), variables, x, key,
                  int(samples), int(chunk_size))
