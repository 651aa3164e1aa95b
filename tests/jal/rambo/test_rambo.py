"""RAMBO building blocks: losses, set model, Eq. 4, hypergradient, greedy-margin."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jal.rambo import acquisition, bilevel, losses, samples
from jal.rambo.utility_model import make_set_net


def _bce(o, p):
  s = 1.0 / (1.0 + math.exp(-o))
  return -p * math.log(s) - (1 - p) * math.log(1 - s)


def test_rank_loss_hand_values_and_ties():
  s1, s2 = jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.5, -1.0])
  u1, u2 = jnp.array([0.9, 0.7, 0.3]), jnp.array([0.8, 0.7, 0.4])
  np.testing.assert_array_equal(losses.rank_target(u1, u2), [1.0, 0.5, 0.0])
  want = [_bce(1.0, 1.0), _bce(-1.0, 0.5), _bce(0.0, 0.0)]
  np.testing.assert_allclose(losses.rank_loss(s1, s2, u1, u2), np.mean(want), rtol=1e-6)
  w = jnp.array([1.0, 0.0, 1.0])
  np.testing.assert_allclose(losses.rank_loss(s1, s2, u1, u2, w), (want[0] + want[2]) / 2,
                             rtol=1e-6)


def test_ot_loss_and_total_hand_values():
  h1, h2 = jnp.array([1.0, -0.5]), jnp.array([2.0, 0.5])
  t1, t2 = jnp.array([0.5, 1.0]), jnp.array([1.0, 1.0])
  # pair 0: .5*.25 + .5*1 = .625; pair 1: .5*2.25 + .5*.25 + 0.5 (relu(-ÔT₁)) = 1.75
  np.testing.assert_allclose(losses.ot_loss(h1, h2, t1, t2), (0.625 + 1.75) / 2, rtol=1e-6)
  s1, s2 = jnp.array([0.0, 1.0]), jnp.array([0.0, 0.0])
  u1, u2 = jnp.array([0.5, 0.2]), jnp.array([0.5, 0.1])
  rank = (_bce(0.0, 0.5) + _bce(1.0, 1.0)) / 2
  got = losses.total_loss(s1, s2, h1, h2, u1, u2, t1, t2, lam_ot=2.0)
  np.testing.assert_allclose(got, rank + 2.0 * (0.625 + 1.75) / 2, rtol=1e-6)
  mse = losses.total_loss(s1, s2, h1, h2, u1, u2, t1, t2, lam_ot=0.0, ranknet=False)
  want = np.mean([0.5 * (0.25 + 0.25), 0.5 * (0.64 + 0.01)])
  np.testing.assert_allclose(mse, want, rtol=1e-6)


@pytest.mark.parametrize("shape", [(8, 8, 1), pytest.param((28, 28, 1), marks=pytest.mark.slow)])
def test_set_model_permutation_invariant_and_ignores_padding(shape):
  sn = make_set_net(shape)
  params = sn.init(jax.random.key(0))
  apply = jax.jit(sn.apply)
  x = jax.random.normal(jax.random.key(1), (2, 5, *shape))
  mask = jnp.array([[True, True, True, False, False], [True, False, True, True, True]])
  out = apply(params, x, mask)
  perm = jnp.array([4, 2, 0, 3, 1])
  out_p = apply(params, x[:, perm], mask[:, perm])
  junk = jnp.where(mask[:, :, None, None, None], x, 1e3)
  out_j = apply(params, junk, mask)
  for other in (out_p, out_j):
    np.testing.assert_allclose(other.score, out.score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(other.ot, out.ot, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(other.phi, out.phi, rtol=1e-5, atol=1e-6)
  # Sets as masks over a shared pool give the same heads.
  pool = x[0]
  out_m = jax.jit(sn.apply_masks)(params, pool, mask[:1])
  np.testing.assert_allclose(out_m.score, out.score[:1], rtol=1e-5, atol=1e-6)


def test_eq4_interpolation_by_hand():
  phi = jnp.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
  phi_i, phi_next = jnp.array([0.0, 0.0]), jnp.array([6.0, 8.0])
  u = samples.interpolate_utility(phi, phi_i, phi_next, 0.6, 0.8)
  # d_i = 0, 5, 10; d_next = 10, 5, 0; α = d_next / (d_next + d_i) = 1, .5, 0.
  np.testing.assert_allclose(u, [0.6, 0.7, 0.8], rtol=1e-5)
  u2 = samples.interpolate_utility(jnp.array([[1.0, 0.0]]), jnp.zeros(2), jnp.array([4.0, 0.0]),
                                   0.5, 0.9)
  np.testing.assert_allclose(u2, [0.75 * 0.5 + 0.25 * 0.9], rtol=1e-5)


def test_random_pair_masks_equal_sizes_within_allowed():
  allowed = jnp.arange(12) % 3 != 0
  m1, m2 = samples.random_pair_masks(jax.random.key(0), 20, allowed)
  np.testing.assert_array_equal(m1.sum(1), m2.sum(1))
  assert int(m1.sum(1).min()) >= 2 and int(m1.sum(1).max()) <= 8
  assert not bool(jnp.any((m1 | m2) & ~allowed[None, :]))


def test_split_by_length_shorter_half_to_train():
  masks = jnp.asarray(np.tril(np.ones((6, 6), bool)))  # sizes 1..6
  d = bilevel.PairData(masks, masks, *(jnp.zeros(6) for _ in range(4)),
                       jnp.array([1.0, 1, 1, 1, 1, 0]))
  tr, val = bilevel.split_by_length(d)
  np.testing.assert_array_equal(tr, [1, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(val, [0, 0, 1, 1, 1, 0])


def test_greedy_margin_picks_best_batch_brute_force():
  rng = np.random.default_rng(0)
  c, e, b, rounds, m = 26, 3, 3, 4, 9
  cand = rng.normal(size=(c, e)).astype(np.float32)
  w = rng.normal(size=e).astype(np.float32)
  base = rng.normal(size=(5, e)).astype(np.float32)
  score_fn = lambda total, count: (total / count[:, None]) @ jnp.asarray(w)
  tr = acquisition.greedy_margin(jax.random.key(3), score_fn, jnp.asarray(base.sum(0)), 5,
                                 jnp.asarray(cand), b, rounds, m)
  sel = np.asarray(tr.selected)
  assert sel.shape == (rounds * b,) and len(set(sel.tolist())) == rounds * b
  current = list(base)
  taken = set()
  for j in range(rounds):
    batches = np.asarray(tr.batches[j])
    avail = [i for i in range(c) if i not in taken][:m]  # candidates sorted by margin
    assert sorted(batches.ravel().tolist()) == avail[:len(batches) * b]
    brute = [float(np.mean(np.concatenate([current, cand[bt]]), 0) @ w) for bt in batches]
    np.testing.assert_allclose(np.asarray(tr.scores[j]), brute, rtol=1e-5, atol=1e-6)
    best = int(np.argmax(brute))
    assert int(tr.choice[j]) == best
    current += list(cand[batches[best]])
    taken |= set(batches[best].tolist())
  assert taken == set(sel.tolist())


def test_greedy_margin_single_round_is_argmax_over_all_batches():
  cand = jnp.eye(6, dtype=jnp.float32)
  w = jnp.arange(6, dtype=jnp.float32)
  tr = acquisition.greedy_margin(jax.random.key(0), lambda t, n: t @ w, jnp.zeros(6), 0, cand,
                                 2, 1, 6)
  batches = np.asarray(tr.batches[0])
  assert sorted(batches.ravel().tolist()) == list(range(6))
  best = max(batches.tolist(), key=sum)
  assert sorted(np.asarray(tr.selected).tolist()) == sorted(best)


def test_rambo_select_returns_unique_unlabeled_low_margin_points():
  import jal
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(16,))
  labeled = np.zeros(data.x_train.shape[0], bool)
  labeled[:30] = True
  v = jal.fit(jax.random.key(0), net, jal.TrainConfig(epochs=2), data.x_train, data.y_train,
              jnp.asarray(labeled)).variables
  sn = make_set_net(data.x_train.shape[1:])
  params = sn.init(jax.random.key(1))
  sel = acquisition.rambo_select(jax.random.key(2), sn, params, net, v, data.x_train, labeled,
                                 12, 4, 8)
  assert sel.shape == (12,) and len(set(sel.tolist())) == 12 and not labeled[sel].any()
  pool = acquisition.smallest_margin(net, v, data.x_train, jnp.asarray(labeled), 2 * 4 + 8)
  assert set(sel.tolist()) <= set(np.asarray(pool).tolist())
  sel_d = acquisition.dulo_select(jax.random.key(3), sn, params, data.x_train, labeled, 8, 4, 20)
  assert len(set(sel_d.tolist())) == 8 and not labeled[sel_d].any()
  # The control: a utility whose score is the same for every set (score head zeroed) makes
  # greedy-margin take the first random batch each round, which is what null_select does.
  flat = jax.tree.map(lambda a: a, params)
  flat["score_head"]["kernel"] = jax.tree.map(jnp.zeros_like, flat["score_head"]["kernel"])
  sel_flat = acquisition.rambo_select(jax.random.key(2), sn, flat, net, v, data.x_train,
                                      labeled, 12, 4, 8)
  sel_null = acquisition.null_select(jax.random.key(2), net, v, data.x_train, labeled, 12, 4, 8)
  np.testing.assert_array_equal(sel_null, sel_flat)
  assert set(sel_null.tolist()) <= set(np.asarray(pool).tolist())
