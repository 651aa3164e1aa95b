"""The learned baselines in the loop and the protocols: no recompiles after round 0, the select
contract, what BatchNorm sees, the one-round protocol and the experiment configs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from experiments import build, configs
from jal.strategies.learned import loss_prediction as lp
from jal.strategies.learned import waal

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
# Small settings: both LossPrediction phases in every fit, short WAAL / VAAL epochs.
SMALL = {"lossprediction": {"detach_epoch": 1},
         "waal": {"unlabeled_per_epoch": 96},
         "vaal": {"vae_epochs": 1, "vae_batch_size": 32, "unlabeled_per_epoch": 64}}


@pytest.fixture(scope="module")
def data():
  return jal.data.load("digits", seed=0)


# VAAL's compile count runs in the slow suite (its VAE makes it the longest case, ~40 s).
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "vaal" else n
                                  for n in sorted(SMALL)])
def test_round_two_compiles_nothing_new(data, name):
  # A net of its own (hidden width 27) so that round 0 has to compile.
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(27,))
  compiles, after_round = [], {}

  def listener(event, duration, **kwargs):
    if event == BACKEND_COMPILE_EVENT:
      compiles.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    jal.run_loop(jax.random.key(11), data, net, jal.TrainConfig(epochs=3, batch_size=16),
                 jal.get_strategy(name, **SMALL[name]),
                 jal.LoopConfig(init_size=20, budget=10, rounds=2, chunk_size=256),
                 verbose=False, on_round=lambda r, rec: after_round.__setitem__(r, len(compiles)))
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert after_round[0] > 0
  # Round 1 trains (with its own fit), evaluates, scores, selects and labels with the shapes
  # of round 0; round 2 trains again.
  assert after_round[1] - after_round[0] == 0, f"round 1 compiled {after_round[1] - after_round[0]}"
  assert after_round[2] - after_round[1] == 0


@pytest.fixture(scope="module")
def small():
  digits = jal.data.load("digits")
  x = jnp.asarray(digits.x_train[:160])
  y = jnp.asarray(digits.y_train[:160])
  labeled = np.zeros(160, bool)
  labeled[np.random.default_rng(0).choice(160, 40, replace=False)] = True
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(16,))
  return net, x, y, labeled, jal.TrainConfig(epochs=2, batch_size=16)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "vaal" else n
                                  for n in sorted(SMALL)])  # VAAL's: ~50 s
def test_select_contract_with_the_strategys_own_fit(small, name):
  net, x, y, labeled, tc = small
  s = jal.get_strategy(name, **SMALL[name])
  fit = s.fit or jal.fit
  res = fit(jax.random.key(0), net, tc, x, y, jnp.asarray(labeled))
  ctx = jal.Context(net, res.variables, x, y, jnp.asarray(labeled), 10, chunk_size=64,
                    train_config=tc, fit_extra=res.extra)
  idx = jal.select(s, jax.random.key(1), ctx, 25)
  assert idx.shape == (25,) and len(set(idx.tolist())) == 25 and not labeled[idx].any()
  k_score, k_pick = jax.random.split(jax.random.key(2))
  raw = np.asarray(s.pick(k_pick, ctx, s.score(k_score, ctx), 25)[0])
  assert len(set(raw.tolist())) == 25 and not labeled[raw].any()  # valid before finalize
  np.testing.assert_array_equal(jal.select(s, jax.random.key(1), ctx, 25), idx)
  if name == "lossprediction":  # the top-25 predicted losses among unlabeled rows
    pred = np.asarray(lp.predicted_losses(net, res.variables, res.extra["lossnet"], x))
    unl = np.flatnonzero(~labeled)
    np.testing.assert_array_equal(np.sort(idx), np.sort(unl[np.argsort(-pred[unl])[:25]]))
  if name == "waal":  # the 25 smallest u − 10·d among unlabeled rows
    logits, emb = jal.predict(net, res.variables, x)
    d = np.asarray(waal.critic_apply(res.extra["critic"], emb), np.float64)
    logp = np.asarray(jax.nn.log_softmax(logits), np.float64)
    total = 0.5 * np.linalg.norm(logp, axis=1) + 0.5 * np.sum(-logp, axis=1) - 10 * d
    unl = np.flatnonzero(~labeled)
    np.testing.assert_array_equal(np.sort(idx), np.sort(unl[np.argsort(total[unl])[:25]]))


def test_lossprediction_candidates_subset(small):
  net, x, y, labeled, tc = small
  s = jal.get_strategy("lossprediction", candidates=30)
  res = s.fit(jax.random.key(0), net, tc, x, y, jnp.asarray(labeled))
  ctx = jal.Context(net, res.variables, x, y, jnp.asarray(labeled), 10, fit_extra=res.extra)
  idx = jal.select(s, jax.random.key(1), ctx, 10)
  full = jal.select(jal.get_strategy("lossprediction"), jax.random.key(1), ctx, 10)
  assert len(set(idx.tolist())) == 10 and not labeled[idx].any()
  assert set(idx.tolist()) != set(full.tolist())  # picked within a random subset of 30


@pytest.mark.slow  # ~24 s (CI time)
def test_lossprediction_without_its_loss_trains_like_jal_fit(small):
  # weight 0: the classifier sees the same initialisation, data order and updates as jal.fit
  net, x, y, labeled, tc = small
  a = jal.fit(jax.random.key(5), net, tc, x, y, jnp.asarray(labeled))
  b = lp.fit_loss_prediction(jax.random.key(5), net, tc, x, y, jnp.asarray(labeled),
                             lp.LossPredConfig(weight=0.0))
  for u, v in zip(jax.tree.leaves(a.variables), jax.tree.leaves(b.variables)):
    np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6)
  c = lp.fit_loss_prediction(jax.random.key(5), net, tc, x, y, jnp.asarray(labeled))
  assert not all(np.allclose(np.asarray(u), np.asarray(v))
                 for u, v in zip(jax.tree.leaves(a.variables), jax.tree.leaves(c.variables)))
  assert int(b.epochs) == tc.epochs
  e = lp.fit_loss_prediction(jax.random.key(5), net, tc, x, y, jnp.asarray(labeled),
                             lp.LossPredConfig(extra_epochs=1))
  assert int(e.epochs) == tc.epochs + 1  # DeepAL+'s longer training


def test_lossprediction_never_reads_unlabeled_rows(small):
  # so its BatchNorm (none in this MLP; ResNet-18's in the slow test below) cannot see them
  net, x, y, labeled, tc = small
  m = jnp.asarray(labeled)
  junk = jnp.where(m[:, None, None, None], x, 7.0)
  a = lp.fit_loss_prediction(jax.random.key(0), net, tc, x, y, m)
  b = lp.fit_loss_prediction(jax.random.key(0), net, tc, junk, y, m)
  for u, v in zip(jax.tree.leaves((a.variables, a.extra)), jax.tree.leaves((b.variables, b.extra))):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
  c = waal.fit_waal(jax.random.key(0), net, tc, x, y, m)
  d = waal.fit_waal(jax.random.key(0), net, tc, junk, y, m)
  assert not np.allclose(np.asarray(jax.tree.leaves(c.variables)[0]),
                         np.asarray(jax.tree.leaves(d.variables)[0]))  # WAAL trains on them


@pytest.mark.slow  # two ResNet-18 compiles: about 2 minutes on 2 cores
def test_batchnorm_sees_unlabeled_rows_only_in_waal():
  digits = jal.data.load("digits")
  x = jnp.asarray(digits.x_train[:64])
  y = jnp.asarray(digits.y_train[:64])
  labeled = np.zeros(64, bool)
  labeled[:21] = True  # the last minibatch of 8 is topped up
  junk = x.at[21:].set(7.0)  # other unlabeled images
  net = jal.make_net("resnet18", (8, 8, 1), 10, width=2)
  tc = jal.TrainConfig(epochs=1, batch_size=8)
  m = jnp.asarray(labeled)
  flat = lambda r: np.concatenate([np.ravel(a) for a in jax.tree.leaves(r.variables)])
  a = lp.fit_loss_prediction(jax.random.key(0), net, tc, x, y, m)
  b = lp.fit_loss_prediction(jax.random.key(0), net, tc, junk, y, m)
  np.testing.assert_array_equal(flat(a), flat(b))  # unlabeled rows are never read
  hp = waal.WaalConfig(unlabeled_per_epoch=24)
  c = waal.fit_waal(jax.random.key(0), net, tc, x, y, m, hp)
  d = waal.fit_waal(jax.random.key(0), net, tc, junk, y, m, hp)
  stats = lambda r: np.concatenate([np.ravel(v) for v in jax.tree.leaves(r.variables.extra)])
  assert np.max(np.abs(stats(c) - stats(d))) > 1e-3  # BatchNorm saw the unlabeled rows


@pytest.mark.slow  # ~17 s (CI time)
def test_one_round_protocol_runs_llal(data):
  from jal.rambo import BilevelConfig, RamboConfig, one_round_strategy, run_one_round
  cfg = RamboConfig(k=30, budget=10, k1=20, b=5, n_aug=4, offline_pairs=6, offline_steps=5,
                    m_factor=2, fit_chunk=6, dulo_candidates=20, ot_debiased=False,
                    utility=BilevelConfig(outer_steps=2, inner_steps=3, cg_steps=2))
  assert one_round_strategy("lossprediction", cfg).fit is not None
  net = jal.make_net("mlp", (8, 8, 1), 10, hidden=(16,))
  tc = jal.TrainConfig(epochs=3, batch_size=64, stop_train_acc=0.99)
  res = run_one_round(jax.random.key(0), data, net, tc, cfg, "lossprediction")
  assert res["labeled"] == 40 and len(set(res["selected"])) == 10
  assert 0 <= res["test_accuracy"] <= 1


def test_configs_reach_the_constructors():
  c = configs.get("bralt_fmnist_reduced")
  c.lock()  # as on the command line: only existing fields can be set
  for name in ("lossprediction", "waal", "vaal"):
    c.strategy.name = name
    assert build.strategy(c).name == name
  c.strategy.name = "waal"
  c.strategy.kwargs.unlabeled_per_epoch = 5000
  c.strategy.kwargs.variant = "deepalplus"
  assert build.strategy_kwargs(c) == {"unlabeled_per_epoch": 5000, "variant": "deepalplus"}
  c.strategy.name = "lossprediction"
  c.strategy.kwargs.detach_epoch = 19
  c.strategy.kwargs.extra_epochs = 20
  assert build.strategy_kwargs(c) == {"detach_epoch": 19, "extra_epochs": 20}
  c.strategy.name = "bral_t"  # BRAL-T's own kwargs are untouched by the learned knobs
  assert set(build.strategy_kwargs(c)) <= {"env", "lam"}
