"""Tests for BRAL-T's RL sampling and the strategies end to end (tiny shapes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.bralt import BRALT_STRATEGIES, env

# Tiny BRAL-T settings. The sampling test uses exactly the shapes of the end-to-end run
# (hidden width 16, 128 padded labeled rows, |T| ≤ 20) so both share one compiled ``sample``.
SMALL = dict(num_samplings=2, actions=2, n_state_clusters=3, n_label_clusters=3,
             steps_per_sampling=3, max_points=64, kmeans_iters=10, rel_epsilon=1e-2,
             max_iterations=500)
PAD_TO, HIDDEN, BUDGET = 128, 16, 15


def test_one_sampling_shapes_and_rewards():
  cfg = env.EnvConfig(**SMALL)
  n, d = 80, HIDDEN
  emb = jax.random.normal(jax.random.key(0), (PAD_TO, d))
  valid = jnp.arange(PAD_TO) < n
  trust = valid & (jnp.arange(PAD_TO) % 4 == 0)
  caps = env.sample_caps(cfg, PAD_TO, 20)
  smp = env.sample(jax.random.key(1), emb, valid, trust, cfg, caps)
  p = cfg.n_state_clusters * cfg.actions
  assert smp.states.shape == (p, 4 * d) and smp.actions.shape == (p, 2 * d)
  assert smp.rewards.shape == (p,) and smp.valid.shape == (p,)
  assert bool(jnp.all(jnp.isfinite(smp.states))) and bool(jnp.all(jnp.isfinite(smp.actions)))
  assert bool(jnp.any(smp.valid))
  r = np.asarray(smp.rewards)[np.asarray(smp.valid)]
  assert np.isfinite(r).all() and (r <= 0).all()
  # Variances are non-negative; the state's U_c moments are shared by its A_c actions.
  assert bool(jnp.all(smp.states[:, d:2 * d] >= 0)) and bool(jnp.all(smp.actions[:, d:] >= 0))
  np.testing.assert_array_equal(smp.states[0], smp.states[1])


def test_worker_threads_give_the_same_selection():
  """Samplings and pool clustering on worker threads: same picks, losses and rewards as on
  the calling thread (same keys, same order)."""
  from jal.bralt.strategy import rl_select
  cfg = env.EnvConfig(**SMALL)
  rng = np.random.default_rng(0)
  emb = jnp.asarray(rng.normal(size=(200, HIDDEN)), jnp.float32)
  labeled = np.arange(200) < 80
  trust = labeled & (np.arange(200) % 4 == 0)
  out = [rl_select(jax.random.key(3), emb, labeled, trust, cfg, BUDGET, 20, pad_to=PAD_TO,
                   workers=w) for w in (1, 2)]
  (i1, info1), (i2, info2) = out
  np.testing.assert_array_equal(i1, i2)
  assert i1.size == BUDGET and not labeled[i1].any()
  np.testing.assert_array_equal(info1["losses"], info2["losses"])
  np.testing.assert_array_equal(info1["pred"], info2["pred"])


@pytest.fixture(scope="module")
def digits():
  return jal.data.load("digits")


def test_bral_t_end_to_end(digits):
  net = jal.make_net("mlp", digits.x_train.shape[1:], digits.num_classes, hidden=(HIDDEN,))
  strategy = BRALT_STRATEGIES["bral_t"](env=SMALL, pad_to=PAD_TO)
  assert strategy.name == "bral_t"
  loop = jal.LoopConfig(init_size=60, budget=BUDGET, rounds=2)
  hist = jal.run_loop(jax.random.key(0), digits, net,
                      jal.TrainConfig(epochs=3, superloss=True), strategy, loop, verbose=False)
  labeled = np.zeros(digits.x_train.shape[0], bool)
  labeled[np.asarray(jal.initial_mask(jax.random.split(jax.random.key(0))[0],
                                      labeled.size, 60))] = True
  for rec in hist.rounds[:-1]:
    q = np.asarray(rec["queried"])
    assert q.size == 15 and np.unique(q).size == 15 and not labeled[q].any()
    labeled[q] = True
  assert [r["n_labeled"] for r in hist.rounds] == [60, 75, 90]
  # Each query round reports its RL / selection split and the reward net's losses.
  for rec in hist.rounds[:-1]:
    info = rec["pick_info"]
    assert info["rl_seconds"] > 0 and info["selection_seconds"] > 0
    assert np.isfinite(info["reward_loss_first"]) and np.isfinite(info["reward_loss_last"])
  assert "pick_info" not in hist.rounds[-1]


def test_no_rl_ablations_select_exactly_b(digits):
  net = jal.make_net("mlp", digits.x_train.shape[1:], digits.num_classes, hidden=(16,))
  n = 300
  x, y = jnp.asarray(digits.x_train[:n]), jnp.asarray(digits.y_train[:n])
  labeled = np.zeros(n, bool)
  labeled[:40] = True
  ctx = jal.Context(net, net.init(jax.random.key(0)), x, y, jnp.asarray(labeled),
                    digits.num_classes)
  for name in ("pseudo_score", "gradnd_gt"):
    idx = jal.select(BRALT_STRATEGIES[name](), jax.random.key(1), ctx, 23)
    assert idx.size == 23 and np.unique(idx).size == 23 and not labeled[idx].any()
  # GradNd-GT is class-balanced over the true labels: ⌈23/10⌉ = 3 per class at most.
  idx = jal.select(BRALT_STRATEGIES["gradnd_gt"](), jax.random.key(1), ctx, 23)
  assert np.bincount(np.asarray(y)[idx], minlength=10).max() <= 3
  # Too few labeled rows for M + C clusters: a clear error.
  few = np.zeros(n, bool)
  few[:4] = True
  with pytest.raises(ValueError, match="BRAL-T needs"):
    jal.select(BRALT_STRATEGIES["bral_t"](env=SMALL), jax.random.key(0),
               ctx._replace(labeled=jnp.asarray(few)), 5)
