"""``jal.fit`` against a hand-written trainer: SGD with momentum, weight decay (SGD's L2 and
AdamW), SuperLoss, ``fit_many``'s fused epochs, and crop/flip augmentation.

The reference makes its own updates in NumPy from ``jax.grad`` of a loss it writes itself
(cross-entropy from ``logsumexp``; SuperLoss's σ* from its own Lambert-W bisection), so a
wrong momentum, a dropped weight decay or a wrong σ* changes the result. With a batch larger
than the labeled set every epoch is one full-batch step and the data order cannot matter.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal import train
from jal.models.net import Variables

N, N_LAB, B, EPOCHS = 120, 24, 32, 6


@pytest.fixture(scope="module")
def pool():
  data = jal.data.load("digits", seed=0)
  return jnp.asarray(data.x_train[:N]), jnp.asarray(data.y_train[:N])


@pytest.fixture(scope="module")
def net():
  return jal.make_net("mlp", (8, 8, 1), 10, hidden=(16,))


def _lambert_w(z: np.ndarray) -> np.ndarray:
  """Principal branch of Lambert W on ``z >= -1/e`` by bisection on ``w e^w = z``."""
  lo = np.full_like(z, -1.0)
  hi = np.maximum(1.0, np.log1p(np.maximum(z, 0.0))) + 1.0
  for _ in range(200):
    mid = (lo + hi) / 2
    below = mid * np.exp(mid) < z
    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
  return (lo + hi) / 2


def _superloss_sigma(loss: np.ndarray, tau: float, lam: float) -> np.ndarray:
  """σ* = argmin_σ (ℓ − τ)σ + λ log²σ = exp(−W(max(−2/e, (ℓ − τ)/λ) / 2))."""
  beta = np.maximum(-2.0 / math.e, (loss - tau) / lam)
  return np.exp(-_lambert_w(beta / 2))


def _reference(net, cfg: jal.TrainConfig, key, x, y, idx):
  """``cfg.epochs`` full-batch steps on rows ``idx``, optimizer written out in NumPy."""
  v = net.init(jax.random.split(key)[0])  # jal.fit's initialisation key
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), v.params)
  xb, yb = x[idx], y[idx]
  tau = math.log(10) if cfg.superloss_tau is None else cfg.superloss_tau

  def per_example(p):
    logits, _, _ = net.apply(Variables(p, v.extra), xb, train=True)
    return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, yb[:, None], -1)[:, 0]

  def loss(p, weights):
    return jnp.mean(weights * per_example(p))

  lr, wd = cfg.learning_rate, cfg.weight_decay
  m = jax.tree.map(np.zeros_like, params)
  s = jax.tree.map(np.zeros_like, params)
  for t in range(1, cfg.epochs + 1):
    p32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    # By the envelope theorem d/dθ min_σ [(ℓ−τ)σ + λ log²σ] = σ*·dℓ/dθ.
    w = (_superloss_sigma(np.asarray(per_example(p32), np.float64), tau, cfg.superloss_lam)
         if cfg.superloss else np.ones(len(idx)))
    g = jax.tree.map(lambda a: np.asarray(a, np.float64),
                     jax.grad(loss)(p32, jnp.asarray(w, jnp.float32)))
    if cfg.optimizer == "sgd":  # L2 added to the gradient, then heavy-ball momentum 0.9
      g = jax.tree.map(lambda gi, pi: gi + wd * pi, g, params)
      m = jax.tree.map(lambda mi, gi: 0.9 * mi + gi, m, g)
      params = jax.tree.map(lambda pi, mi: pi - lr * mi, params, m)
    else:  # Adam(W): decoupled decay
      m = jax.tree.map(lambda mi, gi: 0.9 * mi + 0.1 * gi, m, g)
      s = jax.tree.map(lambda si, gi: 0.999 * si + 0.001 * gi * gi, s, g)
      c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
      params = jax.tree.map(
          lambda pi, mi, si, c1=c1, c2=c2: pi - lr * ((mi / c1) / (np.sqrt(si / c2) + 1e-8)
                                                      + wd * pi), params, m, s)
  return params


@pytest.mark.parametrize("cfg", [
    dict(optimizer="sgd", learning_rate=0.05, weight_decay=0.1),
    dict(optimizer="adam", learning_rate=0.01, weight_decay=0.5),
    dict(optimizer="sgd", learning_rate=0.05, superloss=True, superloss_lam=0.7),
    pytest.param(dict(optimizer="sgd", learning_rate=0.05), marks=pytest.mark.slow),
    pytest.param(dict(optimizer="adam", learning_rate=0.01, superloss=True, superloss_tau=1.0),
                 marks=pytest.mark.slow),
], ids=["sgd_l2", "adamw", "sgd_superloss", "sgd", "adam_superloss_tau1"])
def test_fit_equals_the_reference_trainer(pool, net, cfg):
  x, y = pool
  config = jal.TrainConfig(epochs=EPOCHS, batch_size=B, **cfg)
  idx = np.arange(0, 3 * N_LAB, 3)
  mask = jnp.zeros(N, bool).at[idx].set(True)
  got = jal.fit(jax.random.key(11), net, config, x, y, mask).variables.params
  want = _reference(net, config, jax.random.key(11), x, y, idx)
  init = net.init(jax.random.split(jax.random.key(11))[0]).params
  for g, w, i in zip(jax.tree.leaves(got), jax.tree.leaves(want), jax.tree.leaves(init)):
    moved = np.max(np.abs(w - np.asarray(i)))
    assert moved > 1e-3  # the reference itself trained
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=2e-5 * max(1.0, moved))


def test_superloss_sigma_reference_is_the_minimiser():
  """The test's own σ* against a grid search of (ℓ − τ)σ + λ log²σ, and jal's σ* against it."""
  loss = np.array([0.0, 0.3, 1.0, 2.3, 3.0, 8.0])
  tau, lam = 2.3, 0.7
  grid = np.exp(np.linspace(-6, 1, 200001))
  objective = (loss[:, None] - tau) * grid + lam * np.log(grid) ** 2
  interior = (loss - tau) / lam >= -2 / math.e
  want = grid[np.argmin(objective, 1)]
  ref = _superloss_sigma(loss, tau, lam)
  np.testing.assert_allclose(ref[interior], want[interior], rtol=1e-3)
  np.testing.assert_allclose(ref[~interior], math.e, rtol=1e-6)  # clamped: σ* = e
  np.testing.assert_allclose(np.asarray(jal.scores.superloss_sigma(jnp.asarray(loss), tau, lam)),
                             ref, rtol=1e-5)


def test_fit_many_fused_equals_separate_python_loop_fits(pool, net):
  """``fit_many``'s fused epochs (vmapped ``fori_loop`` up to the longest model's steps)."""
  x, y = pool
  cfg = jal.TrainConfig(epochs=2, batch_size=8, learning_rate=3e-3)
  masks = jnp.stack([jnp.arange(N) < 13, (jnp.arange(N) % 4) == 1, jnp.arange(N) >= 90])
  keys = jax.random.split(jax.random.key(12), 3)
  many = jal.fit_many(keys, net, jal.TrainConfig(**{**cfg.__dict__, "fused_epoch": True}),
                      x, y, masks)
  for i in range(3):
    one = jal.fit(keys[i], net, jal.TrainConfig(**{**cfg.__dict__, "fused_epoch": False}),
                  x, y, masks[i])
    for a, b in zip(jax.tree.leaves(many.variables.params), jax.tree.leaves(one.variables.params)):
      np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(many.epochs[i]) == int(one.epochs)


def _crops(im: np.ndarray) -> np.ndarray:
  """All 81 four-pixel crops of the reflect-padded image, each unflipped and flipped:
  ``[9, 9, 2, H, W, C]``."""
  h, w, _ = im.shape
  p = np.pad(im, ((4, 4), (4, 4), (0, 0)), mode="reflect")
  out = np.stack([np.stack([p[i:i + h, j:j + w] for j in range(9)]) for i in range(9)])
  return np.stack([out, out[:, :, :, ::-1]], axis=2)


def test_augment_draws_every_crop_and_flip():
  """Each output is exactly one crop/flip of its input (brute force), and over many draws every
  offset and both flips occur at about their 1/162 rate; an identity ``augment`` fails."""
  x = np.asarray(jax.random.normal(jax.random.key(8), (1, 8, 8, 1)))
  cand = _crops(x[0]).reshape(162, -1)
  # Reflect padding makes some candidates equal (a flipped edge crop is its neighbour crop):
  # count per distinct image, expecting `draws / 162` draws per candidate that shows it.
  _, cls, mult = np.unique(cand.round(6), axis=0, return_inverse=True, return_counts=True)
  cls, draws, hits = cls.ravel(), 40 * 162, []
  for i in range(4):
    out = np.asarray(train.epoch.augment(jax.random.key(9 + i),
                                         jnp.asarray(np.repeat(x, draws // 4, 0))))
    dist = np.abs(out.reshape(len(out), -1)[:, None, :] - cand[None]).max(-1)
    assert np.all(dist.min(1) < 1e-6)  # every output is one of the 162 candidates
    hits.append(cls[dist.argmin(1)])
  ratio = np.bincount(np.concatenate(hits), minlength=len(mult)) / (draws / 162 * mult)
  assert len(mult) > 100 and ratio.min() > 0.4 and ratio.max() < 1.8, (len(mult), ratio)


def test_training_applies_augmentation(pool, net):
  """Crop/flip leaves a constant image unchanged: training on constant images gives the same
  model with and without it; on real images it must not."""
  x, y = pool
  mask = jnp.arange(N) < 40
  base = jal.TrainConfig(epochs=1, batch_size=16)
  aug = jal.TrainConfig(epochs=1, batch_size=16, augment="crop_flip")
  flat = jnp.broadcast_to(jnp.mean(x, (1, 2, 3), keepdims=True), x.shape)
  a = jal.fit(jax.random.key(13), net, base, flat, y, mask).variables.params
  b = jal.fit(jax.random.key(13), net, aug, flat, y, mask).variables.params
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-7)
  c = jal.fit(jax.random.key(13), net, base, x, y, mask).variables.params
  d = jal.fit(jax.random.key(13), net, aug, x, y, mask).variables.params
  assert max(float(jnp.max(jnp.abs(u - v)))
             for u, v in zip(jax.tree.leaves(c), jax.tree.leaves(d))) > 1e-3
