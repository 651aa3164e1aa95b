"""Selection invariants of every registered strategy, as properties (issue 15, point 6).

For random pool masks, budgets (up to the whole unlabeled pool) and keys, ``jal.select``
returns exactly ``budget`` distinct, previously unlabeled indices; the same key gives the
same picks; and the labels of unlabeled rows are never read (shuffling them changes nothing;
the GraNd-GT oracle reads them by design and is left out of that check). Two pool sizes keep
the compiles few. BRAL-T's and RAMBO's families train models of their own inside a pick and
run in the slow suite.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

import jal

K = 10
SIZES = (48, 64)
_BRALT_ENV = dict(n_state_clusters=2, n_label_clusters=2, actions=2, max_points=32,
                  rel_epsilon=1e-2, num_samplings=2, steps_per_sampling=2)
SMALL_KWARGS = {name: {"env": _BRALT_ENV, "pad_to": 16, "workers": 1}
                for name in ("bral_t", "bral_t_wo_cl", "bral_diffset")}
MIN_LABELED = {name: 2 * 2 + 2 for name in SMALL_KWARGS}  # M + C, and room for the TrustSet
# DULO and the null control with blocks of b = 1 take any budget; DULO's offline pairs need
# |S₀| >= 2. RAMBO is left out: its S₀ must be k1 + τ₁·b points (the refinement schedule), which
# random masks are not; tests/jal/rambo/test_strategy.py runs it through the loop.
SMALL_KWARGS |= {
    "dulo": {"b": 1, "offline_pairs": 3, "offline_steps": 2, "fit_chunk": 6,
             "dulo_candidates": 8, "utility": {"outer_steps": 1, "inner_steps": 1}},
    "null": {"b": 1, "m_factor": 4}}
MIN_LABELED |= {"dulo": 2}
# The learned baselines (their own fit runs first, on the pool's train_config): short VAAL.
SMALL_KWARGS |= {"vaal": {"vae_epochs": 1, "vae_batch_size": 16}}
ONE_ROUND_ONLY = {"rambo"}
READS_UNLABELED_LABELS = {"gradnd_gt"}  # the oracle ablation uses the true labels on purpose
FAST = ("random", "margin", "entropy", "least_confidence", "bald", "coreset", "kmeans", "badge",
        "pseudo_score", "glister", "similar")


def _params():
  return [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
          for n in sorted(jal.STRATEGIES) if n not in ONE_ROUND_ONLY]


@pytest.fixture(scope="module")
def pools():
  digits = load_digits()
  x = digits.images.astype(np.float32)
  x = ((x - x.mean()) / x.std())[..., None]
  y = digits.target.astype(np.int32)
  net = jal.make_net("mlp", x.shape[1:], K, hidden=(16,), dropout=0.25)
  v = net.init(jax.random.key(0))
  tc = jal.TrainConfig(epochs=2, batch_size=16)
  return {n: jal.Context(net, v, jnp.asarray(x[:n]), jnp.asarray(y[:n]), jnp.zeros(n, bool), K,
                         chunk_size=32, x_val=jnp.asarray(x[-40:]), y_val=jnp.asarray(y[-40:]),
                         train_config=tc)
          for n in SIZES}


def _check(idx, labeled, budget):
  idx = np.asarray(idx)
  assert idx.shape == (budget,) and np.issubdtype(idx.dtype, np.integer)
  assert len(set(idx.tolist())) == budget
  assert idx.min() >= 0 and idx.max() < labeled.size
  assert not labeled[idx].any()


@pytest.mark.parametrize("name", _params())
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_selection_invariants(pools, name, data):
  n = data.draw(st.sampled_from(SIZES), label="n")
  lo = MIN_LABELED.get(name, 1)
  n_lab = data.draw(st.integers(lo, n - max(lo, 2)), label="n_labeled")
  budget = data.draw(st.integers(1, n - n_lab), label="budget")
  seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
  rng = np.random.default_rng(seed)
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, n_lab, replace=False)] = True
  ctx = pools[n]._replace(labeled=jnp.asarray(labeled))
  strategy = jal.get_strategy(name, **SMALL_KWARGS.get(name, {}))
  key = jax.random.key(seed % 1000)
  ctx = _own_fit(strategy, key, ctx)
  idx = jal.select(strategy, key, ctx, budget)
  _check(idx, labeled, budget)
  np.testing.assert_array_equal(jal.select(strategy, key, ctx, budget), idx)
  if name not in READS_UNLABELED_LABELS:
    y = np.asarray(ctx.y).copy()
    unl = np.flatnonzero(~labeled)
    y[unl] = rng.permutation(y[unl])[::-1] if unl.size > 1 else (y[unl] + 1) % K
    shuffled = _own_fit(strategy, key, ctx._replace(y=jnp.asarray(y)))
    np.testing.assert_array_equal(jal.select(strategy, key, shuffled, budget), idx,
                                  err_msg=f"{name} read the labels of unlabeled rows")


def _own_fit(strategy, key, ctx):
  """The context after the strategy's own fit (LossPrediction, WAAL), as the loop builds it."""
  if strategy.fit is None:
    return ctx
  res = strategy.fit(key, ctx.net, ctx.train_config, ctx.x, ctx.y, ctx.labeled)
  return ctx._replace(variables=res.variables, fit_extra=res.extra)
