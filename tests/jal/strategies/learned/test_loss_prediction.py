"""LossPrediction / LLAL against BASELINES.md §1 (NumPy loops, hand-made batches)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jal
from jal.strategies.learned import loss_prediction as lp

K = 10


def _np_ranking(pred, target, r, margin=1.0):
  """§1.3 on the first ``r`` rows: pair i with r−1−i, A = +1 iff l_i − l_j > 0, mean of
  max(0, ξ − A·(l̂_i − l̂_j)) over the ⌊r/2⌋ pairs (0 without pairs)."""
  total, pairs = 0.0, 0
  for i in range(r // 2):
    j = r - 1 - i
    a = 1.0 if target[i] - target[j] > 0 else -1.0
    total += max(0.0, margin - a * (pred[i] - pred[j]))
    pairs += 1
  return total / pairs if pairs else 0.0


def test_ranking_loss_matches_the_formula_on_a_hand_made_batch():
  # M = 8: pairs (0,7) (1,6) (2,5) (3,4); pair (2,5) is a tie (→ A = −1).
  target = np.array([2.0, 0.5, 1.0, 0.3, 0.9, 1.0, 0.1, 0.4], np.float32)
  pred = np.array([0.2, 1.5, -0.3, 0.0, 0.8, 0.4, 0.1, 2.5], np.float32)
  got = float(lp.ranking_loss(jnp.asarray(pred), jnp.asarray(target), jnp.int32(8)))
  # by hand: (0,7) A=+1: max(0, 1 − (0.2 − 2.5)) = 3.3; (1,6) A=+1: max(0, 1 − 1.4) = 0;
  # (2,5) tie A=−1: max(0, 1 + (−0.3 − 0.4)) = 0.3; (3,4) A=−1: max(0, 1 + (0 − 0.8)) = 0.2
  assert got == pytest.approx((3.3 + 0.0 + 0.3 + 0.2) / 4, abs=1e-6)
  assert got == pytest.approx(_np_ranking(pred, target, 8), abs=1e-6)
  # the margin enters as ξ
  got2 = float(lp.ranking_loss(jnp.asarray(pred), jnp.asarray(target), jnp.int32(8), 2.0))
  assert got2 == pytest.approx(_np_ranking(pred, target, 8, 2.0), abs=1e-6)


@pytest.mark.parametrize("r", [0, 1, 2, 5, 6, 7])
def test_ranking_pairs_skip_the_padding(r):
  rng = np.random.default_rng(r)
  pred = rng.normal(size=8).astype(np.float32)
  target = rng.exponential(size=8).astype(np.float32)
  got = float(lp.ranking_loss(jnp.asarray(pred), jnp.asarray(target), jnp.int32(r)))
  assert got == pytest.approx(_np_ranking(pred, target, r), abs=1e-6)
  # padded rows (r..7) change nothing, neither in value nor in gradient
  pred2, target2 = pred.copy(), target.copy()
  pred2[r:] = 100.0 * rng.normal(size=8 - r)
  target2[r:] = 50.0
  again = float(lp.ranking_loss(jnp.asarray(pred2), jnp.asarray(target2), jnp.int32(r)))
  assert again == pytest.approx(got, abs=1e-6)
  g = jax.grad(lp.ranking_loss)(jnp.asarray(pred2), jnp.asarray(target2), jnp.int32(r))
  np.testing.assert_array_equal(np.asarray(g)[r:], 0.0)
  if r % 2:  # the middle row of an odd batch has no partner
    assert float(g[r // 2]) == 0.0


def test_lossnet_matches_numpy():
  widths = (3, 5)
  params = lp.lossnet_init(jax.random.key(0), widths, width=4)
  rng = np.random.default_rng(0)
  f1 = rng.normal(size=(6, 2, 3, 3)).astype(np.float32)  # a feature map: global mean
  f2 = rng.normal(size=(6, 5)).astype(np.float32)        # a vector: as is
  got = np.asarray(lp.lossnet_apply(params, (jnp.asarray(f1), jnp.asarray(f2))))
  p = jax.tree.map(np.asarray, params)
  h1 = np.maximum(f1.mean(axis=(1, 2)) @ p["taps"][0]["w"] + p["taps"][0]["b"], 0)
  h2 = np.maximum(f2 @ p["taps"][1]["w"] + p["taps"][1]["b"], 0)
  want = (np.concatenate([h1, h2], -1) @ p["out"]["w"] + p["out"]["b"])[:, 0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # PyTorch's default initialisation: U(±1/√fan_in)
  assert np.abs(p["taps"][1]["w"]).max() <= 1 / np.sqrt(5)
  assert np.abs(p["out"]["w"]).max() <= 1 / np.sqrt(8)


@pytest.fixture(scope="module")
def batch():
  digits = jal.data.load("digits")
  net = jal.make_net("mlp", digits.x_train.shape[1:], K, hidden=(24, 12))
  v = net.init(jax.random.key(0))
  head = lp.lossnet_init(jax.random.key(1), lp.feature_widths(net, (8, 8, 1)), 16)
  xb = jnp.asarray(digits.x_train[:10])
  yb = jnp.asarray(digits.y_train[:10])
  wb = jnp.asarray([1.0] * 7 + [0.0] * 3)
  return net, v, head, xb, yb, wb


def _grads(batch, d):
  net, v, head, xb, yb, wb = batch
  hp = lp.LossPredConfig()
  return jax.grad(lambda p, h: lp.joint_loss(net, hp, p, h, v.extra, xb, yb, wb, jnp.int32(7),
                                             jnp.float32(d))[0], argnums=(0, 1))(v.params, head)


def test_detach_cuts_the_module_gradient_from_the_trunk_only(batch):
  net, v, head, xb, yb, wb = batch

  def ce(params):
    logits = net.apply(jal.Variables(params, v.extra), xb)[0]
    per = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
    return jnp.sum(per * wb) / jnp.sum(wb)

  g_ce = jax.grad(ce)(v.params)
  g0_params, g0_head = _grads(batch, 0.0)
  g1_params, g1_head = _grads(batch, 1.0)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  # after the detach epoch: exactly the CE gradient reaches the classifier
  np.testing.assert_allclose(flat(g1_params), flat(g_ce), rtol=1e-5, atol=1e-7)
  # before it, the ranking loss reaches the classifier too
  assert np.max(np.abs(flat(g0_params) - flat(g_ce))) > 1e-4
  # the LossNet's gradient is the same in both phases, and not zero
  np.testing.assert_allclose(flat(g1_head), flat(g0_head), rtol=1e-6, atol=1e-8)
  assert np.max(np.abs(flat(g0_head))) > 1e-4


def test_one_compile_serves_both_phases():
  digits = jal.data.load("digits")
  x, y = jnp.asarray(digits.x_train[:96]), jnp.asarray(digits.y_train[:96])
  mask = jnp.arange(96) < 40
  tc = jal.TrainConfig(epochs=3, batch_size=16)
  compiles = []

  def listener(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
      compiles.append(duration)

  counts = []
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:  # fresh nets (widths 23, 29) so that each fit compiles its own step
    for width, detach_epoch in ((23, 1), (29, 100)):  # crosses the detach epoch / never does
      net = jal.make_net("mlp", (8, 8, 1), K, hidden=(width,))
      before = len(compiles)
      lp.fit_loss_prediction(jax.random.key(0), net, tc, x, y, mask,
                             lp.LossPredConfig(detach_epoch=detach_epoch))
      counts.append(len(compiles) - before)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert counts[0] == counts[1] > 0


def test_padding_rows_do_not_enter_the_loss(batch):
  net, v, head, xb, yb, wb = batch
  hp = lp.LossPredConfig()
  args = (v.params, head, v.extra)
  a = lp.joint_loss(net, hp, *args, xb, yb, wb, jnp.int32(7), jnp.float32(0))[0]
  xb2 = xb.at[7:].set(5.0)
  yb2 = yb.at[7:].set((yb[7:] + 3) % K)
  b = lp.joint_loss(net, hp, *args, xb2, yb2, wb, jnp.int32(7), jnp.float32(0))[0]
  assert float(a) == pytest.approx(float(b), rel=1e-6)


def _feature_shapes(net, shape):
  v = jax.eval_shape(net.init, jax.random.key(0))
  x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
  return jax.eval_shape(net.apply_features, v, x)


def test_features_of_every_model():
  for name, shape, kw, want in [
      ("mlp", (8, 8, 1), {"hidden": (32, 16)}, [(2, 32), (2, 16)]),
      ("lenet", (28, 28, 1), {}, [(2, 12, 12, 6), (2, 4, 4, 16), (2, 120), (2, 84)]),
      ("resnet18", (32, 32, 3), {"width": 4},
       [(2, 32, 32, 4), (2, 16, 16, 8), (2, 8, 8, 16), (2, 4, 4, 32)])]:
    net = jal.make_net(name, shape, K, **kw)
    logits, emb, feats, _ = _feature_shapes(net, shape)
    assert [f.shape for f in feats] == want, name
    assert logits.shape == (2, K) and emb.shape == (2, net.embed_dim)
    assert lp.feature_widths(net, shape) == tuple(w[-1] for w in want)
  # the features are the classifier's own activations: apply is unchanged, the last feature
  # is what the embedding is made of (LeNet: the embedding; ResNet-18 — slow suite, a ~40 s
  # compile — its global mean)
  _check_features_against_apply("lenet", (28, 28, 1), {})


@pytest.mark.slow
def test_resnet_features_against_apply():
  _check_features_against_apply("resnet18", (8, 8, 1), {"width": 2})


def _check_features_against_apply(name, shape, kw):
  net = jal.make_net(name, shape, K, **kw)
  v = net.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (3, *shape))
  l1, _, feats, _ = net.apply_features(v, x)
  l2, e2, _ = net.apply(v, x)
  np.testing.assert_array_equal(np.asarray(l1), np.asarray(l2))
  last = feats[-1] if feats[-1].ndim == 2 else jnp.mean(feats[-1], axis=(1, 2))
  np.testing.assert_allclose(np.asarray(last), np.asarray(e2), rtol=1e-6, atol=1e-6)


def test_config_is_validated():
  with pytest.raises(ValueError):
    lp.LossPredConfig(detach_epoch=-1)
  with pytest.raises(ValueError):
    lp.lossprediction_strategy(candidates=0)
  s = jal.get_strategy("lossprediction")
  ctx = jal.Context(None, None, None, None, jnp.zeros(4, bool), K)
  with pytest.raises(ValueError, match="own fit"):
    s.score(jax.random.key(0), ctx)
