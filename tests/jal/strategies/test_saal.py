"""SAAL: the perturbation against a hand computation, the perturbed loss against a per-example
loop (no vmap, no chunks), ρ = 0, the 1-D k-means++ pick and the strategy's top-B mode."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jal
from jal.strategies.saal import kmeans_plusplus_1d, perturbation, sharpness_losses


def test_perturbation_on_a_two_parameter_model():
  params = {"a": jnp.array([2.0]), "b": jnp.array([-1.0])}
  grads = {"a": jnp.array([0.5]), "b": jnp.array([3.0])}
  # ‖|θ| ⊙ g‖ = ‖(2·0.5, 1·3)‖ = √10; ε = ρ θ² g / √10
  rho = 0.05
  eps = perturbation(params, grads, rho)
  np.testing.assert_allclose(float(eps["a"][0]), rho * 4 * 0.5 / np.sqrt(10), rtol=1e-6)
  np.testing.assert_allclose(float(eps["b"][0]), rho * 1 * 3.0 / np.sqrt(10), rtol=1e-6)


@pytest.fixture(scope="module")
def model():
  rng = np.random.default_rng(0)
  net = jal.make_net("mlp", (8, 8, 1), 5, hidden=(12,))
  v = net.init(jax.random.key(2))
  x = jnp.asarray(rng.standard_normal((23, 8, 8, 1)), jnp.float32)
  return net, v, x


def _one_by_one(net, v, x, rho):
  """The reference's per-sample loop: pseudo label, gradient, ε, perturbed loss."""
  out = []
  for i in range(x.shape[0]):
    xi = x[i:i + 1]
    y_hat = jnp.argmax(net.apply(v, xi)[0], -1)

    def loss(params, xi=xi, y_hat=y_hat):
      logits = net.apply(jal.Variables(params, v.extra), xi)[0]
      return optax.softmax_cross_entropy_with_integer_labels(logits, y_hat).mean()

    l0, g = jax.value_and_grad(loss)(v.params)
    leaves_p, leaves_g = jax.tree.leaves(v.params), jax.tree.leaves(g)
    norm = np.sqrt(sum(float(np.sum((np.abs(p) * gg) ** 2)) for p, gg in zip(leaves_p, leaves_g)))
    scale = rho / (norm + 1e-12)
    new = jax.tree.map(lambda p, gg, scale=scale: p + p * p * gg * scale, v.params, g)
    out.append([float(l0), float(loss(new))])
  return np.asarray(out)


def test_perturbed_losses_match_a_per_example_loop(model):
  net, v, x = model
  got = np.asarray(sharpness_losses(net, v, x, rho=0.5, chunk_size=8))
  want = _one_by_one(net, v, x, 0.5)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert np.all(got[:, 1] > got[:, 0])  # the ascent step raises the loss


def test_rho_zero_gives_the_pseudo_label_loss(model):
  net, v, x = model
  got = np.asarray(sharpness_losses(net, v, x, rho=0.0))
  logits = np.asarray(net.apply(v, x)[0], np.float64)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  ce = -logp.max(-1)
  np.testing.assert_allclose(got[:, 0], ce, rtol=1e-5)
  np.testing.assert_allclose(got[:, 1], ce, rtol=1e-5)


def test_kmeans_plusplus_1d_starts_at_the_largest_abs_score():
  s = jnp.array([0.25, -2.0, 0.25, 0.25, 1.0, 0.25, 1.0])
  for seed in range(5):
    idx = np.asarray(kmeans_plusplus_1d(jax.random.key(seed), s, 7))
    assert idx[0] == 1 and sorted(idx.tolist()) == list(range(7))
    # D² of the duplicates of a chosen value is 0: the three distinct values come first.
    assert sorted(np.asarray(s)[idx[:3]].tolist()) == [-2.0, 0.25, 1.0]
  valid = jnp.array([True, False, True, True, True, True, False])  # -2.0 and a 1.0 masked
  idx = np.asarray(kmeans_plusplus_1d(jax.random.key(0), s, 5, valid))
  assert idx[0] == 4 and sorted(idx.tolist()) == [0, 2, 3, 4, 5]


def test_kmeans_plusplus_1d_draws_proportional_to_squared_distance():
  # First 3.0; then 0.0 with probability 9 / (9 + 4) (the reference's D2 ** 2 / sum(D2 ** 2)),
  # 0.6 if it were ∝ distance. 2000 draws: standard error 0.010.
  s = jnp.array([0.0, 1.0, 3.0])
  keys = jax.random.split(jax.random.key(0), 2000)
  idx = np.asarray(jax.vmap(lambda k: kmeans_plusplus_1d(k, s, 2))(keys))
  assert np.all(idx[:, 0] == 2)
  assert abs(np.mean(idx[:, 1] == 0) - 9 / 13) < 0.04


def test_max_mode_takes_the_top_perturbed_losses_of_random_unlabeled_candidates(model):
  net, v, x = model
  labeled = np.zeros(23, bool)
  labeled[[0, 5, 9]] = True
  ctx = jal.Context(net, v, x, jnp.zeros(23, jnp.int32), jnp.asarray(labeled), 5)
  s = jal.get_strategy("saal", mode="max", pool_subset=12, rho=0.5)
  aux = s.score(jax.random.key(0), ctx)
  cand = np.asarray(aux[0])
  assert cand.size == 12 and len(set(cand.tolist())) == 12 and not labeled[cand].any()
  idx, info = jal.strategies.pick(s, jax.random.key(1), ctx, aux, 4)
  l1 = _one_by_one(net, v, x[cand], 0.5)[:, 1]
  np.testing.assert_array_equal(idx, cand[np.argsort(-l1, kind="stable")[:4]])
  # More queries than candidates: every candidate, then random unlabeled rows.
  key = jax.random.key(0)
  cand = np.asarray(s.score(jax.random.split(key)[0], ctx)[0])  # select's score key
  idx = jal.select(s, key, ctx, 15)
  assert set(cand.tolist()) <= set(idx.tolist()) and not labeled[idx].any()


def test_fewer_unlabeled_rows_than_pool_subset_keeps_shapes_and_skips_labeled(model):
  net, v, x = model
  labeled = np.zeros(23, bool)
  labeled[[0, 5, 9]] = True
  ctx = jal.Context(net, v, x, jnp.zeros(23, jnp.int32), jnp.asarray(labeled), 5)
  for mode in ("max", "max_diversity"):
    s = jal.get_strategy("saal", mode=mode, pool_subset=50)
    aux = s.score(jax.random.key(0), ctx)
    assert np.asarray(aux[0]).shape == (23,)  # min(pool_subset, n): labeled rows at the tail
    idx, info = s.pick(jax.random.key(1), ctx, aux, 20)  # raw: before select's clean-up
    assert sorted(np.asarray(idx).tolist()) == np.flatnonzero(~labeled).tolist()
    assert info["candidates"] == 20
