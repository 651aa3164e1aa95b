"""``fit_subsets`` and the patch forms of LeNet-5 / ψ against the reference ``fit`` / conv."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jal
from jal.models.patch_lenet import conv_patches, patch_lenet
from jal.rambo.bilevel import (
  BilevelConfig,
  PairData,
  init_lambda,
  pair_loss,
  regularizer,
  train_plain,
)
from jal.rambo.fast_fit import patch_set_net
from jal.rambo.utility_model import make_set_net
from jal.train import TrainConfig, fit_subsets


def _pool(n=24, seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.random((n, 28, 28, 1), np.float32)),
          jnp.asarray(rng.integers(0, 3, n)))


def test_patch_lenet_is_the_same_function():
  net = jal.make_net("lenet", (28, 28, 1), 3)
  x, _ = _pool(5)
  v = net.init(jax.random.key(0))
  a, ea, _ = net.apply(v, x)
  b, eb, _ = patch_lenet(net).apply(v, conv_patches(x))
  np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(eb, ea, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # ~37 s on 2 cores (CI time); the other fit_subsets checks stay
def test_fit_subsets_equals_separate_fits():
  # Sizes 3 (trimmed batch of 8), 20 (one step) and 24 > batch 16 (two steps, last padded).
  net = jal.make_net("lenet", (28, 28, 1), 3)
  x, y = _pool()
  cfg = TrainConfig(epochs=6, batch_size=16, stop_train_acc=0.9)
  masks = np.stack([np.arange(24) < 3, np.arange(24) >= 4, np.ones(24, bool)])
  keys = jax.random.split(jax.random.key(1), 3)
  many = fit_subsets(keys, net, cfg, x, y, masks)
  for i in range(3):
    ref = jal.fit(keys[i], net, cfg, x, y, jnp.asarray(masks[i]))
    assert int(many.epochs[i]) == int(ref.epochs)
    for a, b in zip(jax.tree.leaves(many.variables.params), jax.tree.leaves(ref.variables.params)):
      np.testing.assert_allclose(a[i], b, atol=1e-5)
  # Threads (the CPU default here is one per core) change nothing: same as one thread.
  one = fit_subsets(keys, net, cfg, x, y, masks, workers=1)
  for a, b in zip(jax.tree.leaves(many.variables), jax.tree.leaves(one.variables)):
    np.testing.assert_array_equal(a, b)


def test_map_threads_keeps_order_and_default_workers():
  from jal.parallel.host_threads import default_workers, map_threads
  assert map_threads(lambda i: i * i, range(7), workers=3) == [i * i for i in range(7)]
  assert map_threads(lambda i: -i, [], workers=2) == []
  assert default_workers(5) == 5 and default_workers(0) == 1 and default_workers(100) == 8
  assert default_workers() >= 1


@pytest.mark.slow  # ~55 s of compiles
def test_patch_set_net_training_matches_conv_set_net():
  sn = make_set_net((28, 28, 1))
  x, _ = _pool(10)
  p = sn.init(jax.random.key(0))
  psn, xp = patch_set_net(sn, p, x)
  masks = jnp.asarray(np.random.default_rng(0).random((4, 10)) < 0.5)
  a, b = sn.apply_masks(p, x, masks), psn.apply_masks(p, xp, masks)
  np.testing.assert_allclose(b.score, a.score, rtol=1e-5, atol=1e-6)
  d = PairData(masks[:2], masks[2:], jnp.array([.5, .7]), jnp.array([.6, .4]), jnp.ones(2),
               jnp.ones(2), jnp.ones(2))
  cfg = BilevelConfig(lam_ot=1.0)
  # train_plain uses the patch form internally; compare to plain gradient steps on the conv form.
  got = train_plain(sn, cfg, p, x, d, 3)
  lam = init_lambda(p, cfg)
  tx = optax.adam(cfg.inner_lr)
  w, opt = p, tx.init(p)
  for _ in range(3):
    g = jax.grad(lambda q: pair_loss(sn, cfg, q, x, d, d.weight) + regularizer(q, lam))(w)
    u, opt = tx.update(g, opt, w)
    w = optax.apply_updates(w, u)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(w)):
    np.testing.assert_allclose(a, b, atol=1e-5)
