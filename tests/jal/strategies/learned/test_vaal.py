"""VAAL against BASELINES.md §3: the losses, the discriminator's targets, the query direction
(authors' and DeepAL+'s) and the shapes of both VAEs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jal
from jal.strategies.learned import vaal, vae_nets


def _np_bce(logits, target):
  p = 1 / (1 + np.exp(-logits))
  return np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p)))


def test_vae_loss_is_mse_mean_plus_beta_kl_sum_over_real_rows():
  rng = np.random.default_rng(0)
  x, recon = (rng.normal(size=(5, 4, 4, 1)) for _ in range(2))
  mu, logvar = rng.normal(size=(5, 3)), 0.3 * rng.normal(size=(5, 3))
  w = np.array([1, 1, 1, 0, 0], np.float64)
  got = float(vaal.vae_loss(*(jnp.asarray(a, jnp.float32) for a in (recon, x, mu, logvar, w)),
                            beta=0.5))
  mse = np.mean((recon[:3] - x[:3]) ** 2)
  kl = -0.5 * np.sum(1 + logvar[:3] - mu[:3] ** 2 - np.exp(logvar[:3]))  # summed over rows
  assert got == pytest.approx(mse + 0.5 * kl, rel=1e-5)


@pytest.mark.parametrize("variant, u_target", [("authors", 0.0), ("deepalplus", 1.0)])
def test_discriminator_targets(variant, u_target):
  params = vaal.disc_init(jax.random.key(0), 4)
  rng = np.random.default_rng(1)
  mu_l, mu_u = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
  w = np.array([1, 1, 1, 1, 0, 0], np.float64)
  target = vaal.VARIANTS[variant][0]
  assert target == u_target
  got = float(vaal.disc_loss(params, jnp.asarray(mu_l, jnp.float32),
                             jnp.asarray(mu_u, jnp.float32), jnp.asarray(w, jnp.float32), target))
  lg = lambda m: np.asarray(vaal.disc_logits(params, jnp.asarray(m, jnp.float32)), np.float64)
  want = _np_bce(lg(mu_l)[:4], 1.0) + _np_bce(lg(mu_u)[:4], u_target)
  assert got == pytest.approx(want, rel=1e-5)


@pytest.fixture(scope="module")
def toy():
  """64 8×8 images: the labeled rows are bright, the unlabeled ones dark (easy to tell)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 8, 8, 1)).astype(np.float32) * 0.3
  mask = np.zeros(64, bool)
  mask[:16] = True
  x[mask] += 2.0
  return jnp.asarray(x), mask


@pytest.mark.slow  # ~40 s per variant on 2 cores (the VAE compiles); CI time
@pytest.mark.parametrize("variant", ["authors", "deepalplus"])
def test_training_follows_the_targets_and_the_query_its_direction(toy, variant):
  x, mask = toy
  # adv_param = 0: the VAE does not fight D, so D shows its targets plainly.
  hp = vaal.VaalConfig(variant=variant, epochs=10, batch_size=16, learning_rate=1e-2,
                       adv_param=0.0, adv_steps=2)
  vae, state = vaal.train_vaal(jax.random.key(0), x, mask, hp)
  mu, _ = vae.encode(state.vae, x)
  d = np.asarray(jax.nn.sigmoid(vaal.disc_logits(state.disc, mu)))
  if variant == "authors":  # D tells labeled (1) from unlabeled (0)
    assert d[mask].min() > 0.8 and d[~mask].mean() < 0.2
  else:  # DeepAL+: both targets 1, D says "labeled" to everything
    assert d[mask].min() > 0.9 and d[~mask].min() > 0.9
  scores = np.asarray(vaal.vaal_scores(vae, hp, state, x, 16))
  sign = -1.0 if variant == "authors" else 1.0
  np.testing.assert_allclose(scores, sign * d, rtol=1e-5, atol=1e-6)
  # the pick: lowest D among unlabeled (authors), highest (DeepAL+)
  s = vaal.vaal_strategy(variant=variant)
  ctx = jal.Context(None, None, x, None, jnp.asarray(mask), 2)
  idx = np.asarray(s.pick(jax.random.key(1), ctx, jnp.asarray(scores), 5)[0])
  unl = np.flatnonzero(~mask)
  order = unl[np.argsort(sign * -d[unl], kind="stable")]
  np.testing.assert_array_equal(idx, order[:5])


def test_vae_shapes():
  for kind, shape, n_params in [("small", (28, 28, 1), None), ("small", (8, 8, 1), None),
                                ("conv32", (32, 32, 3), 22_835_139)]:
    vae = vae_nets.make_vae(kind, shape)
    v = jax.eval_shape(vae.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    recon, mu, logvar, _ = jax.eval_shape(functools.partial(vae.apply, train=True), v, x,
                                          jax.random.key(1))
    assert recon.shape == (2, *shape) and mu.shape == logvar.shape == (2, 32), kind
    if n_params:  # the authors' ≈ 23M-parameter VAE
      assert sum(np.prod(a.shape) for a in jax.tree.leaves(v.params)) == n_params
  assert vae_nets.vae_kind("auto", (32, 32, 3)) == "conv32"
  assert vae_nets.vae_kind("auto", (28, 28, 1)) == "small"
  with pytest.raises(ValueError):
    vae_nets.make_vae("small", (30, 30, 1))


def test_transposed_convolution_has_pytorch_geometry():
  # out = (in − 1)·s − 2p + k + output_padding
  for cin, k, s, p, op, size in [(3, 4, 2, 1, 0, 7), (3, 4, 2, 1, 1, 14), (2, 4, 1, 2, 0, 29),
                                 (2, 1, 1, 0, 0, 5)]:
    layer = vae_nets.TorchConv(cin, 2, k, s, p, transpose=True, output_padding=op,
                               rngs=nnx.Rngs(0))
    y = layer(jnp.ones((1, size, size, cin)))
    want = (size - 1) * s - 2 * p + k + op
    assert y.shape == (1, want, want, 2)


def test_variant_defaults_and_validation():
  assert vaal.VARIANTS["authors"][2:] == (5e-4, 1)
  assert vaal.VARIANTS["deepalplus"][2:] == (1e-3, 2)
  with pytest.raises(ValueError):
    vaal.vaal_strategy(variant="nope")
  with pytest.raises(ValueError):
    vaal.vaal_strategy(vae="big")
  with pytest.raises(ValueError):
    vaal.VaalConfig(unlabeled_per_epoch=0)
