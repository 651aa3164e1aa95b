"""Tests for BRAL-T's RL sampling and the no-RL ablations (tiny shapes; the end-to-end run is
the golden BRAL-T case, tests/test_golden.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.bralt import BRALT_STRATEGIES, env
from tests.golden import cases

# The golden BRAL-T run's environment, embedding width (its MLP's hidden layer) and padding
# (tests/golden/cases.py), so these tests run the programs that run compiles: with the test
# run's shared XLA cache each is compiled once. Budget 15 → a TrustSet of at most 20 rows.
SMALL = cases.BRALT["env"]
PAD_TO, HIDDEN, BUDGET, TRUST_CAP = cases.BRALT["pad_to"], cases.HIDDEN, cases.LOOP.budget, 20


def test_one_sampling_shapes_and_rewards():
  cfg = env.EnvConfig(**SMALL)
  n, d = 50, HIDDEN
  emb = jax.random.normal(jax.random.key(0), (PAD_TO, d))
  valid = jnp.arange(PAD_TO) < n
  trust = valid & (jnp.arange(PAD_TO) % 4 == 0)
  caps = env.sample_caps(cfg, PAD_TO, TRUST_CAP)
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
  labeled = np.arange(200) < 40
  trust = labeled & (np.arange(200) % 4 == 0)
  out = [rl_select(jax.random.key(3), emb, labeled, trust, cfg, BUDGET, TRUST_CAP, pad_to=PAD_TO,
                   workers=w) for w in (1, 2)]
  (i1, info1), (i2, info2) = out
  np.testing.assert_array_equal(i1, i2)
  assert i1.size == BUDGET and not labeled[i1].any()
  np.testing.assert_array_equal(info1["losses"], info2["losses"])
  np.testing.assert_array_equal(info1["pred"], info2["pred"])


@pytest.fixture(scope="module")
def digits():
  return jal.data.load("digits")


def test_no_rl_ablations_select_exactly_b(digits):
  net = jal.make_net("mlp", digits.x_train.shape[1:], digits.num_classes, hidden=(16,))
  n = 300
  x, y = jnp.asarray(digits.x_train[:n]), jnp.asarray(digits.y_train[:n])
  labeled = np.zeros(n, bool)
  labeled[:40] = True
  ctx = jal.Context(net, net.init(jax.random.key(0)), x, y, jnp.asarray(labeled),
                    digits.num_classes)
  # (Pseudo-score's picks are checked by the selection properties.) GradNd-GT: exactly b new
  # rows, class-balanced over the true labels: ⌈23/10⌉ = 3 per class at most.
  idx = jal.select(BRALT_STRATEGIES["gradnd_gt"](), jax.random.key(1), ctx, 23)
  assert idx.size == 23 and np.unique(idx).size == 23 and not labeled[idx].any()
  assert np.bincount(np.asarray(y)[idx], minlength=10).max() <= 3
  # Too few labeled rows for M + C clusters: a clear error.
  few = np.zeros(n, bool)
  few[:4] = True
  with pytest.raises(ValueError, match="BRAL-T needs"):
    jal.select(BRALT_STRATEGIES["bral_t"](env=SMALL), jax.random.key(0),
               ctx._replace(labeled=jnp.asarray(few)), 5)
