"""Tests of jal.train: fit / fit_many on a masked fixed-size pool."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal

CFG = jal.TrainConfig(epochs=15, batch_size=16, learning_rate=3e-3)


@pytest.fixture(scope="module")
def pool():
  data = jal.data.load("digits", seed=0)
  return jnp.asarray(data.x_train[:300]), jnp.asarray(data.y_train[:300]), data


@pytest.fixture(scope="module")
def net():
  return jal.make_net("mlp", (8, 8, 1), 10, hidden=(32,))


def _mask(n, idx):
  m = np.zeros(n, bool)
  m[idx] = True
  return jnp.asarray(m)


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_fit_learns_labeled_set(pool, net):
  x, y, data = pool
  mask = _mask(300, np.arange(0, 300, 3))  # 100 labeled, not a multiple of the batch
  res = jal.fit(jax.random.key(0), net, CFG, x, y, mask)
  assert int(res.epochs) == CFG.epochs
  assert float(res.train_acc) > 0.95
  assert jal.accuracy(net, res.variables, data.x_test, data.y_test) > 0.75


def test_fit_reads_only_labeled_rows(pool, net):
  """Unlabeled rows hold NaN images and labels out of range: training must never touch them."""
  x, y, _ = pool
  idx = np.arange(40)
  mask = _mask(300, idx)
  x_bad = x.at[40:].set(jnp.nan)
  y_bad = y.at[40:].set(-7)
  ref = jal.fit(jax.random.key(1), net, CFG, x, y, mask)
  got = jal.fit(jax.random.key(1), net, CFG, x_bad, y_bad, mask)
  assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(got.variables.params))
  assert _max_diff(ref.variables.params, got.variables.params) < 1e-6


@pytest.mark.slow  # test_against_reference checks fit_many against separate fits by default
def test_fit_many_equals_separate_fits(pool, net):
  x, y, _ = pool
  keys = jax.random.split(jax.random.key(2), 3)
  masks = jnp.stack([_mask(300, np.arange(30)), _mask(300, np.arange(50, 120)),
                     _mask(300, np.arange(0, 300, 7))])
  many = jal.fit_many(keys, net, CFG, x, y, masks)
  for i in range(3):
    one = jal.fit(keys[i], net, CFG, x, y, masks[i])
    per_model = jax.tree.map(lambda l, i=i: l[i], many.variables.params)
    assert _max_diff(per_model, one.variables.params) < 1e-4
    np.testing.assert_allclose(float(many.train_acc[i]), float(one.train_acc), atol=1e-6)


def test_fused_epoch_matches_python_step_loop(pool, net):
  x, y, _ = pool
  mask = _mask(300, np.arange(45))
  cfg = jal.TrainConfig(epochs=3, batch_size=16)
  a = jal.fit(jax.random.key(3), net, dataclasses.replace(cfg, fused_epoch=True), x, y, mask)
  b = jal.fit(jax.random.key(3), net, dataclasses.replace(cfg, fused_epoch=False), x, y, mask)
  assert _max_diff(a.variables.params, b.variables.params) < 1e-5


def test_stop_train_acc_stops_early(pool, net):
  x, y, _ = pool
  cfg = jal.TrainConfig(epochs=200, batch_size=16, learning_rate=3e-3, stop_train_acc=0.99)
  res = jal.fit(jax.random.key(4), net, cfg, x, y, _mask(300, np.arange(30)))
  assert float(res.train_acc) > 0.99
  assert int(res.epochs) < 200


def test_fit_many_models_stop_independently(pool, net):
  x, y, _ = pool
  cfg = jal.TrainConfig(epochs=60, batch_size=16, learning_rate=3e-3, stop_train_acc=0.99)
  masks = jnp.stack([_mask(300, np.arange(10)), _mask(300, np.arange(200))])
  res = jal.fit_many(jax.random.split(jax.random.key(5), 2), net, cfg, x, y, masks)
  assert int(res.epochs[0]) < int(res.epochs[1]) or int(res.epochs[1]) == 60
  one = jal.fit(jax.random.split(jax.random.key(5), 2)[0], net, cfg, x, y, masks[0])
  assert int(one.epochs) == int(res.epochs[0])


def test_predict_chunks_equal_full_batch(pool, net):
  x, _, _ = pool
  v = net.init(jax.random.key(7))
  logits, emb = jal.predict(net, v, x[:77], chunk_size=16)
  ref_logits, ref_emb, _ = net.apply(v, x[:77])
  np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(emb, ref_emb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", ["labels", "mask_dtype", "empty", "x_shape", "masks_k"])
def test_bad_inputs_raise(pool, net, bad):
  x, y, _ = pool
  mask = _mask(300, np.arange(20))
  with pytest.raises(ValueError):
    if bad == "labels":
      jal.fit(jax.random.key(0), net, CFG, x, y.at[3].set(10), mask)
    elif bad == "mask_dtype":
      jal.fit(jax.random.key(0), net, CFG, x, y, mask.astype(jnp.int32))
    elif bad == "empty":
      jal.fit(jax.random.key(0), net, CFG, x, y, jnp.zeros(300, bool))
    elif bad == "x_shape":
      jal.fit(jax.random.key(0), net, CFG, x.reshape(300, 64), y, mask)
    else:
      jal.fit_many(jax.random.split(jax.random.key(0), 2), net, CFG, x, y, mask[None])


def test_train_config_validation():
  with pytest.raises(ValueError):
    jal.TrainConfig(epochs=0)
  with pytest.raises(ValueError):
    jal.TrainConfig(optimizer="rmsprop")
  with pytest.raises(ValueError):
    jal.TrainConfig(augment="mixup")


@pytest.mark.slow  # ResNet-18 compiles (~2 min on 2 cores); run with -m slow
def test_fit_updates_batchnorm_models():
  """BatchNorm statistics are updated inside jax.grad (regression: NNX TraceContextError)."""
  net = jal.make_net("resnet18", (8, 8, 1), 10, width=4)
  x = jax.random.normal(jax.random.key(0), (48, 8, 8, 1))
  y = jnp.arange(48) % 10
  mask = _mask(48, np.arange(32))
  before = net.init(jax.random.split(jax.random.key(1))[0])
  res = jal.fit(jax.random.key(1), net, jal.TrainConfig(epochs=1, batch_size=16), x, y, mask)
  assert _max_diff(before.extra, res.variables.extra) > 1e-3
  assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(res.variables))
