"""RAMBO protocol plumbing: fit_many on LeNet, subset utilities, OT targets, refinement pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from experiments import build, configs
from jal.rambo import samples


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a),
                                                             jax.tree.leaves(b)))


@pytest.mark.slow  # ~37 s of LeNet compiles (fit_subsets' equivalence stays in the default suite)
def test_fit_many_equals_separate_fits_lenet_28x28():
  """RAMBO's utility samples: many LeNets on subsets of a small 28×28 pool, with early stop."""
  x = jax.random.normal(jax.random.key(0), (24, 28, 28, 1))
  y = jnp.arange(24) % 3
  net = jal.make_net("lenet", (28, 28, 1), 3)
  cfg = jal.TrainConfig(epochs=3, batch_size=8, stop_train_acc=0.99)
  masks = jnp.stack([jnp.arange(24) < 5, jnp.arange(24) % 2 == 0])
  keys = jax.random.split(jax.random.key(1), 2)
  many = jal.fit_many(keys, net, cfg, x, y, masks)
  for i in range(2):
    one = jal.fit(keys[i], net, cfg, x, y, masks[i])
    per_model = jax.tree.map(lambda leaf, i=i: leaf[i], many.variables.params)
    assert _max_diff(per_model, one.variables.params) < 1e-4
    assert int(many.epochs[i]) == int(one.epochs)


def test_subset_utilities_match_single_fits_and_ot_padding():
  data = jal.data.load("digits")
  x0, y0 = data.x_train[:20], data.y_train[:20]
  net = jal.make_net("mlp", x0.shape[1:], data.num_classes, hidden=(8,))
  cfg = jal.TrainConfig(epochs=2, batch_size=8)
  masks = jnp.stack([jnp.arange(20) < 6, jnp.arange(20) >= 5, jnp.arange(20) % 3 == 0])
  key = jax.random.key(0)
  u = samples.subset_utilities(key, net, cfg, x0, y0, masks, data.x_val, data.y_val,
                               chunk_size=2)
  for i in (0, 2):  # sorted, chunked and padded: model i still uses fold_in(key, i)
    v = jal.fit(jax.random.fold_in(key, i), net, cfg, x0, y0, masks[i]).variables
    np.testing.assert_allclose(u[i], jal.accuracy(net, v, data.x_val, data.y_val), atol=1e-6)


def test_ot_targets_finite_and_ordered():
  data = jal.data.load("digits")
  x0, y0 = data.x_train[:20], data.y_train[:20]
  geom = samples.make_ot_targets(x0, y0, data.x_val[:30], data.y_val[:30], data.num_classes,
                                 debiased=False)
  masks = jnp.stack([jnp.arange(20) < 20, jnp.arange(20) < 3, jnp.arange(20) < 20])
  ot = samples.ot_targets(geom, masks, chunk_size=2)  # two chunks, the last one padded
  assert ot.shape == (3,) and bool(jnp.all(jnp.isfinite(ot)))
  np.testing.assert_allclose(ot[0], ot[2], rtol=1e-5)


@pytest.mark.slow  # ~21 s (CI time)
def test_refinement_pairs_keep_offline_pairs_when_asked(monkeypatch):
  """R7 alternative: D holds the offline pairs (true utilities) before the augmented ones."""
  from jal.rambo import protocol, training
  config = configs.get("rambo_smoke")
  assert not build.rambo_config(config).offline_in_d
  config.rambo.offline_in_d = True
  cfg = build.rambo_config(config)
  assert cfg.offline_in_d
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(8,))
  tc = jal.TrainConfig(epochs=2, batch_size=8)
  seen = []
  monkeypatch.setattr(training, "train_plain", lambda sn, c, p, *a, **k: p)

  def fake_bilevel(set_net, u_cfg, params, pool, d, lam=None, **kw):
    seen.append(jax.tree.map(np.asarray, d))
    return params, lam, jnp.zeros(0)

  monkeypatch.setattr(training, "train_bilevel", fake_bilevel)
  # Only the utility model's training (no acquisition, no final classifier).
  key = jax.random.key(3)
  off = protocol.prepare_offline(key, data, net, tc, cfg)
  x0, y0 = data.x_train[off.s0], data.y_train[off.s0]
  training.fit_rambo_utility(key, cfg, net, tc, x0, y0, data.x_val, data.y_val, off)
  tau1, n, p = (cfg.k - cfg.k1) // cfg.b, cfg.n_aug, off.pairs.weight.shape[0]
  assert len(seen) == tau1
  for i, d in enumerate(seen):
    assert d.weight.shape == (p + tau1 * n,)
    for name in ("masks1", "masks2", "u1", "u2", "ot1", "ot2", "weight"):
      np.testing.assert_array_equal(getattr(d, name)[:p], np.asarray(getattr(off.pairs, name)))
    np.testing.assert_array_equal(d.weight[p:p + (i + 1) * n], 1.0)
    np.testing.assert_array_equal(d.weight[p + (i + 1) * n:], 0.0)
    assert d.masks1[p + i * n:p + (i + 1) * n].any(axis=1).all()
