"""Tests for jal.scores and jal.parallel.chunking: NumPy / SciPy / per-example references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
import scipy.special

import jal
from jal import scores
from jal.parallel.chunking import chunked_map
from tests.jal.batchnorm_stats import perturbed_batchnorm

# τ and λ are traced here, so one compile serves every (τ, λ) of a given loss shape.
_sigma = jax.jit(scores.superloss_sigma)
_weights = jax.jit(scores.superloss_weights)

K = 10
N = 37  # Not a multiple of CHUNK: the last chunk is padded.
CHUNK = 16
SHAPE = (8, 8, 1)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mlp():
  """One MLP (dropout 0.25, so MC dropout works too) with its variables and a tiny pool."""
  net = jal.make_net("mlp", SHAPE, K, hidden=(16,), dropout=0.25)
  variables = net.init(jax.random.key(0))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(N, *SHAPE)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, K, size=N).astype(np.int32))
  return net, variables, x, y


def _np_softmax(logits):
  z = np.asarray(logits, np.float64)
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _np_entropy(p):
  p = np.asarray(p, np.float64)
  return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def _random_probs(rng, n, k):
  """Random probability rows plus a uniform row and a one-hot row (exact zeros)."""
  p = rng.dirichlet(np.full(k, 0.5), size=n)
  uniform = np.full((1, k), 1.0 / k)
  onehot = np.eye(k)[:1]
  return np.concatenate([p, uniform, onehot]).astype(np.float32)


# ----------------------------------------------------------------------------- Lambert W


# The library calls lambertw0 inside jitted code (SuperLoss in training), where XLA fuses
# the Halley iterations; check both the eager and the jitted function.
LAMBERTW = {"eager": scores.lambertw0, "jit": jax.jit(scores.lambertw0)}


@pytest.mark.parametrize("mode", sorted(LAMBERTW))
def test_lambertw0_matches_scipy(mode):
  inv_e = 1.0 / math.e
  just_above = -inv_e + np.array([1e-6, 3e-6, 1e-5, 1e-4, 1e-3, 1e-2])
  z = np.concatenate([[-inv_e, 0.0, 1.0, math.e, 50.0], just_above,
                      np.linspace(-inv_e, 50.0, 2001)]).astype(np.float32)
  w = np.asarray(LAMBERTW[mode](jnp.asarray(z)), np.float64)
  ref = scipy.special.lambertw(z.astype(np.float64), 0).real
  assert np.all(np.isfinite(w))
  # Away from the branch point W₀ is well conditioned: much tighter there.
  far = z > -inv_e + 1e-2
  np.testing.assert_allclose(w[far], ref[far], rtol=2e-6, atol=2e-6)
  # Defining identity w·eʷ = z (backward error).
  np.testing.assert_allclose(w * np.exp(w), z, rtol=2e-6, atol=1e-6)
  # Known values: W(−1/e) = −1, W(0) = 0, W(1) = Ω (omega constant), W(e) = 1.
  np.testing.assert_allclose(w[:4], [-1.0, 0.0, 0.5671432904097838, 1.0], rtol=0, atol=5e-5)
  err = np.abs(w - ref)
  assert err.max() < 5e-5, (err.max(), z[err.argmax()])


@pytest.mark.parametrize("mode", sorted(LAMBERTW))
def test_lambertw0_exact_at_branch_point(mode):
  # float32(−1/e) and anything below it is clamped to the branch point, where W₀ = −1
  # exactly (the initial series guess is already −1 there).
  z = jnp.asarray([-1.0 / math.e, -0.5, -1.0], jnp.float32)
  np.testing.assert_allclose(np.asarray(LAMBERTW[mode](z)), [-1.0, -1.0, -1.0], rtol=0,
                             atol=1e-6)


@pytest.mark.parametrize("mode", sorted(LAMBERTW))
def test_lambertw0_last_float32_values_above_branch_point(mode):
  # The first float32 numbers above −1/e, where W₀ has infinite slope: the distance to the
  # branch point is taken in two parts and the series kept, so the forward error stays at
  # float32 rounding (~2e-8) whether or not XLA fuses e·z + 1 (level 0 of
  # tests/conftest.py does not; the one-constant form and Halley's steps were off by 1.7e-4).
  z = [np.float32(-1.0 / math.e)]
  for _ in range(64):
    z.append(np.nextafter(z[-1], np.float32(1.0)))
  z = np.asarray(z, np.float32)
  w = np.asarray(LAMBERTW[mode](jnp.asarray(z)), np.float64)
  ref = scipy.special.lambertw(z.astype(np.float64), 0).real
  assert np.all(w >= -1.0) and np.all(w <= -0.99)
  np.testing.assert_allclose(w, ref, rtol=0, atol=1e-6)
  np.testing.assert_allclose(w * np.exp(w), z, rtol=0, atol=1e-7)


@pytest.mark.parametrize("mode", sorted(LAMBERTW))
def test_lambertw0_across_the_series_to_halley_switch(mode):
  # A dense grid over [−1/e, −1/e + 0.01] crosses p = 0.1 (z + 1/e ≈ 1.84e-3), where the
  # series hands over to Halley's steps: both sides within 1e-6 (measured 4.3e-7).
  z = np.linspace(-1.0 / math.e, -1.0 / math.e + 0.01, 20001).astype(np.float32)
  w = np.asarray(LAMBERTW[mode](jnp.asarray(z)), np.float64)
  ref = scipy.special.lambertw(z.astype(np.float64), 0).real
  np.testing.assert_allclose(w, ref, rtol=0, atol=1e-6)


def test_lambertw0_keeps_shape_and_dtype():
  z = jnp.asarray([[0.0, -0.2], [0.5, 2.0]], jnp.float32)
  w = scores.lambertw0(z)
  assert w.shape == (2, 2) and w.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(w), scipy.special.lambertw(np.asarray(z, np.float64)).real,
                             rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- SuperLoss


def _brute_sigma(loss, tau, lam):
  """argmin over σ ∈ [1e-4, e] of (ℓ − τ)σ + λ(log σ)², solved on u = log σ."""
  def obj(u):
    return (loss - tau) * math.exp(u) + lam * u * u
  res = scipy.optimize.minimize_scalar(obj, bounds=(math.log(1e-4), 1.0), method="bounded",
                                       options={"xatol": 1e-10})
  assert res.success
  return math.exp(res.x)


SUPERLOSS_CASES = [
    # (loss, tau, lam)
    (2.3, 2.3, 1.0),        # ℓ = τ: σ* = 1
    (2.0, 2.3, 1.0),        # slightly easy
    (1.9, 2.3, 0.5),
    (0.1, 2.3, 1.0),        # ℓ − τ ≤ −2λ/e: σ* = e
    (1.0, 2.3, 0.25),       # ℓ − τ ≤ −2λ/e: σ* = e
    (2.3 - 2.0 / math.e, 2.3, 1.0),  # exactly on the boundary: σ* = e
    (3.0, 2.3, 1.0),
    (5.0, 2.3, 0.25),
    (10.0, 1.0, 0.5),
    (60.0, 0.0, 1.0),
    (0.7, 0.5, 3.0),
]


@pytest.mark.parametrize("loss,tau,lam", SUPERLOSS_CASES)
def test_superloss_sigma_matches_brute_force(loss, tau, lam):
  got = float(_sigma(jnp.float32(loss), tau, lam))
  want = _brute_sigma(loss, tau, lam)
  np.testing.assert_allclose(got, want, rtol=1e-3)
  if loss - tau < -2.0 * lam / math.e - 1e-3:  # Clearly inside the clamped region.
    np.testing.assert_allclose(got, math.e, rtol=1e-3)


@pytest.mark.parametrize("jit", [False, True])
def test_superloss_sigma_is_e_in_clamped_region(jit):
  # ℓ − τ ≤ −2λ/e: W₀ is evaluated at its branch point and σ* = e (docstring).
  fn = _sigma if jit else scores.superloss_sigma
  loss = jnp.asarray([0.0, 0.1, 1.0, 1.5], jnp.float32)
  np.testing.assert_allclose(np.asarray(fn(loss, 2.3, 1.0)), np.full(4, math.e), rtol=1e-5)


def test_superloss_sigma_vectorised_matches_scalar_and_properties():
  tau, lam = math.log(10.0), 0.5
  loss = jnp.asarray(np.linspace(0.0, 40.0, 801), jnp.float32)
  sigma = np.asarray(_sigma(loss, tau, lam), np.float64)
  assert sigma.shape == loss.shape
  # σ* ∈ (0, e].
  assert np.all(sigma > 0.0) and np.all(sigma <= math.e * (1 + 1e-6))
  # Monotone non-increasing in the loss (float32 noise allowed), strictly over the range.
  assert np.all(np.diff(sigma) <= 1e-6), np.diff(sigma).max()
  assert sigma[0] > sigma[-1] + 1.0
  # σ*(τ) = 1.
  np.testing.assert_allclose(float(_sigma(jnp.float32(tau), tau, lam)), 1.0,
                             atol=2e-6)
  # Against the brute force on a few grid points (vectorised call, same numbers).
  for i in (0, 100, 250, 800):
    np.testing.assert_allclose(sigma[i], _brute_sigma(float(loss[i]), tau, lam), rtol=1e-3)


def test_superloss_sigma_tends_to_one_as_lambda_grows():
  for diff in (-1.0, 1.0, 5.0):
    devs = [abs(float(_sigma(jnp.float32(1.0 + diff), 1.0, lam)) - 1.0)
            for lam in (1.0, 10.0, 100.0, 1e4)]
    assert all(a > b for a, b in zip(devs[:-1], devs[1:], strict=True)), devs
    # σ* ≈ 1 − (ℓ − τ)/(2λ) for large λ.
    assert devs[-1] < 1e-3
    np.testing.assert_allclose(devs[-1], abs(diff) / 2e4, rtol=2e-2)


def test_superloss_weights_have_zero_gradient():
  loss = jnp.asarray([0.1, 1.0, 2.3, 4.0, 9.0], jnp.float32)
  tau, lam = 2.3, 0.5
  np.testing.assert_array_equal(_weights(loss, tau, lam), _sigma(loss, tau, lam))
  g = jax.jit(jax.grad(lambda v: jnp.sum(scores.superloss_weights(v, tau, lam))))(loss)
  np.testing.assert_array_equal(np.asarray(g), np.zeros(5, np.float32))
  # The weights do depend on the loss (so the check above can fail): finite differences.
  h = 1e-2
  fd = (np.asarray(_weights(loss + h, tau, lam), np.float64)
        - np.asarray(_weights(loss - h, tau, lam), np.float64)) / (2 * h)
  assert np.all(fd[2:] < -1e-3), fd


# ----------------------------------------------------------------------------- EL2N / GraNd


def test_el2n_from_logits_matches_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=3.0, size=(20, K)).astype(np.float32)
  y = rng.integers(0, K, size=20).astype(np.int32)
  got = np.asarray(scores.el2n_from_logits(jnp.asarray(logits), jnp.asarray(y)))
  want = np.linalg.norm(_np_softmax(logits) - np.eye(K)[y], axis=-1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert np.all(got >= 0.0) and np.all(got <= math.sqrt(2.0) + 1e-6)


def test_el2n_matches_per_example_loop(mlp):
  net, variables, x, y = mlp
  got = np.asarray(scores.el2n(net, variables, x, y, chunk_size=CHUNK))
  assert got.shape == (N,)
  apply_one = jax.jit(lambda v, xi: net.apply(v, xi)[0])  # One compile for [1, 8, 8, 1].
  want = np.empty(N)
  for i in range(N):
    logits = apply_one(variables, x[i:i + 1])
    p = _np_softmax(logits)[0]
    want[i] = np.linalg.norm(p - np.eye(K)[int(y[i])])
  np.testing.assert_allclose(got, want, rtol=1e-4)


def _ce_grad_norms(net, variables, x, y, jit=False):
  """‖∇_θ CE(x_i, y_i)‖ for each i, one example at a time."""
  def loss(params, xi, yi):
    logits, _, _ = net.apply(jal.Variables(params, variables.extra), xi, train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yi)[0]

  grad_fn = jax.grad(loss)
  if jit:
    grad_fn = jax.jit(grad_fn)
  out = np.empty(x.shape[0])
  for i in range(x.shape[0]):
    g = grad_fn(variables.params, x[i:i + 1], y[i:i + 1])
    flat = np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(g)])
    out[i] = np.linalg.norm(flat)
  return out


def test_grand_matches_per_example_grad_mlp(mlp):
  net, variables, x, y = mlp
  got = np.asarray(scores.grand(net, variables, x, y, chunk_size=CHUNK))
  assert got.shape == (N,)
  np.testing.assert_allclose(got, _ce_grad_norms(net, variables, x, y, jit=True), rtol=1e-4)


def test_grand_matches_analytic_one_hidden_layer_mlp(mlp):
  # For logits = W2ᵀ relu(W1ᵀx + b1) + b2 and CE loss, with r = p − onehot(y):
  #   ∇W2 = e ⊗ r, ∇b2 = r, ∇W1 = x ⊗ d, ∇b1 = d, d = (W2 r) ⊙ 1[pre-activation > 0],
  # so GraNd² = ‖r‖²(‖e‖² + 1) + ‖d‖²(‖x‖² + 1).
  net, variables, x, y = mlp
  w1 = np.asarray(variables.params["layers"][0]["kernel"][...], np.float64)
  b1 = np.asarray(variables.params["layers"][0]["bias"][...], np.float64)
  w2 = np.asarray(variables.params["head"]["kernel"][...], np.float64)
  b2 = np.asarray(variables.params["head"]["bias"][...], np.float64)
  xf = np.asarray(x, np.float64).reshape(N, -1)
  pre = xf @ w1 + b1
  e = np.maximum(pre, 0.0)
  r = _np_softmax(e @ w2 + b2) - np.eye(K)[np.asarray(y)]
  d = (r @ w2.T) * (pre > 0)
  want = np.sqrt((r ** 2).sum(1) * ((e ** 2).sum(1) + 1.0)
                 + (d ** 2).sum(1) * ((xf ** 2).sum(1) + 1.0))
  got = np.asarray(scores.grand(net, variables, x, y, chunk_size=CHUNK))
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # The head alone gives the EL2N·‖[e, 1]‖ lower bound.
  el2n = np.asarray(scores.el2n(net, variables, x, y, chunk_size=CHUNK))
  assert np.all(got >= el2n * np.sqrt((e ** 2).sum(1) + 1.0) * (1 - 1e-5))


def test_grand_identical_examples_get_identical_scores(mlp):
  net, variables, x, y = mlp
  # Copies of row 5 inside its own chunk (row 6) and in the padded last chunk (row 36).
  x2 = x.at[6].set(x[5]).at[N - 1].set(x[5])
  y2 = y.at[6].set(y[5]).at[N - 1].set(y[5])
  s = np.asarray(scores.grand(net, variables, x2, y2, chunk_size=CHUNK))
  assert np.all(s >= 0.0) and np.all(np.isfinite(s))
  np.testing.assert_allclose(s[[6, N - 1]], [s[5], s[5]], rtol=1e-6)
  e = np.asarray(scores.el2n(net, variables, x2, y2, chunk_size=CHUNK))
  np.testing.assert_allclose(e[[6, N - 1]], [e[5], e[5]], rtol=1e-6)


@pytest.mark.slow
def test_grand_matches_per_example_grad_resnet():
  net = jal.make_net("resnet18", SHAPE, K, width=4)
  variables = net.init(jax.random.key(3))
  # Non-trivial running statistics, so eval-mode BatchNorm differs from batch statistics.
  rng = np.random.default_rng(3)
  variables = perturbed_batchnorm(variables, rng, shift_params=False)
  n = 12
  x = jnp.asarray(rng.normal(size=(n, *SHAPE)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, K, size=n).astype(np.int32))
  got = np.asarray(scores.grand(net, variables, x, y, chunk_size=5))
  assert got.shape == (n,)
  np.testing.assert_allclose(got, _ce_grad_norms(net, variables, x, y, jit=True), rtol=1e-4)


# ----------------------------------------------------------------------------- uncertainty


def test_uncertainty_scores_match_numpy():
  p = _random_probs(np.random.default_rng(2), 40, 7)
  pj = jnp.asarray(p)
  p64 = p.astype(np.float64)
  srt = np.sort(p64, axis=-1)
  np.testing.assert_allclose(np.asarray(scores.margin_score(pj)), -(srt[:, -1] - srt[:, -2]),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(scores.entropy_score(pj)), _np_entropy(p64),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(scores.least_confidence_score(pj)),
                             1.0 - p64.max(-1), rtol=1e-6, atol=1e-7)


def test_uncertainty_scores_larger_is_more_informative():
  p = _random_probs(np.random.default_rng(3), 40, 7)
  uniform, onehot = 40, 41
  for fn in (scores.margin_score, scores.entropy_score, scores.least_confidence_score):
    s = np.asarray(fn(jnp.asarray(p)))
    assert np.all(np.isfinite(s)), fn.__name__
    assert int(np.argmax(s)) == uniform, fn.__name__
    assert int(np.argmin(s)) == onehot, fn.__name__
  np.testing.assert_allclose(float(scores.entropy_score(jnp.asarray(p))[uniform]), math.log(7),
                             rtol=1e-6)
  np.testing.assert_allclose(float(scores.margin_score(jnp.asarray(p))[onehot]), -1.0,
                             atol=1e-7)


def _np_bald(mc):
  mc = np.asarray(mc, np.float64)
  return _np_entropy(mc.mean(0)) - _np_entropy(mc).mean(0)


def test_bald_score_matches_numpy():
  rng = np.random.default_rng(4)
  mc = rng.dirichlet(np.full(5, 0.7), size=(7, 20)).astype(np.float32)
  got = np.asarray(scores.bald_score(jnp.asarray(mc)))
  want = _np_bald(mc)
  assert got.shape == (20,)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert np.all(got >= -1e-6)  # Mutual information is non-negative (Jensen).


def test_bald_score_zero_when_samples_agree():
  p = np.random.default_rng(5).dirichlet(np.ones(5), size=20).astype(np.float32)
  mc = jnp.asarray(np.broadcast_to(p, (6, 20, 5)))
  np.testing.assert_allclose(np.asarray(scores.bald_score(mc)), np.zeros(20), atol=2e-6)


def test_mc_probs_needs_dropout():
  net0 = jal.make_net("mlp", SHAPE, K, hidden=(16,))
  assert net0.dropout == 0.0
  v = net0.init(jax.random.key(0))
  with pytest.raises(ValueError, match="dropout"):
    scores.mc_probs(net0, v, jnp.zeros((4, *SHAPE)), jax.random.key(0), samples=3)


def test_mc_probs_samples(mlp):
  net, variables, x, _ = mlp
  t = 4
  a = np.asarray(scores.mc_probs(net, variables, x, jax.random.key(1), t, CHUNK))
  b = np.asarray(scores.mc_probs(net, variables, x, jax.random.key(1), t, CHUNK))
  c = np.asarray(scores.mc_probs(net, variables, x, jax.random.key(2), t, CHUNK))
  assert a.shape == (t, N, K)
  np.testing.assert_allclose(a.sum(-1), np.ones((t, N)), rtol=1e-5)
  np.testing.assert_array_equal(a, b)  # Same key, same samples.
  assert np.abs(a - c).max() > 1e-3  # Different key, different samples.
  # Samples differ from each other for (almost) every row.
  spread = np.abs(a - a[:1]).max(axis=(0, 2))
  assert np.mean(spread > 1e-4) > 0.9


# ----------------------------------------------------------------------------- chunked_map


def _pair_fn(c):
  a, b = c
  return {"s": a * 2.0 + jnp.sum(b, axis=-1), "o": a[:, None] * b}


@pytest.mark.parametrize("n,chunk", [(3, 8), (8, 8), (17, 8), (5, 1), (6, 100)])
def test_chunked_map_equals_unchunked(n, chunk):
  rng = np.random.default_rng(n * 100 + chunk)
  a = jnp.asarray(rng.normal(size=(n,)).astype(np.float32))
  b = jnp.asarray(rng.normal(size=(n, 3)).astype(np.float32))
  seen = []

  def fn(c):
    seen.append(c[0].shape[0])
    return _pair_fn(c)

  got = jax.jit(lambda a, b: chunked_map(fn, (a, b), chunk))(a, b)
  want = _pair_fn((a, b))
  assert got["s"].shape == (n,) and got["o"].shape == (n, 3)
  np.testing.assert_allclose(np.asarray(got["s"]), np.asarray(want["s"]), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(got["o"]), np.asarray(want["o"]), rtol=1e-6)
  assert seen == [min(chunk, n)]  # fn sees fixed-size chunks, traced once.


def test_chunked_map_empty_pool():
  # An empty pool (e.g. scoring zero rows) gives empty results, like the unchunked fn.
  a = jnp.zeros((0,), jnp.float32)
  b = jnp.zeros((0, 3), jnp.float32)
  got = chunked_map(_pair_fn, (a, b), 8)
  assert got["s"].shape == (0,) and got["o"].shape == (0, 3)
