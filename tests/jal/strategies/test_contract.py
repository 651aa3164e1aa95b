"""The Strategy contract: ``pick -> (indices, info)``, a strategy's own ``fit`` whose extra
parameters reach ``score`` through the context, and state kept across rounds that survives a
killed run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal

LOOP = jal.LoopConfig(init_size=20, budget=10, rounds=3, chunk_size=256)
TRAIN = jal.TrainConfig(epochs=2, batch_size=16)


@pytest.fixture(scope="module")
def data():
  return jal.data.load("digits", seed=0)


@pytest.fixture(scope="module")
def net():
  return jal.make_net("mlp", (8, 8, 1), 10, hidden=(16,))


def _toy(calls: list):
  """Own fit (an extra "bias" drawn from the fit key), state = a permutation drawn once."""

  def fit(key, net, config, x, y, labeled, *, mesh=None):
    calls.append("fit")
    res = jal.fit(key, net, config, x, y, labeled, mesh=mesh)
    return res._replace(extra={"bias": jax.random.uniform(jax.random.fold_in(key, 1))})

  def state(key, ctx, prev):
    if prev is None:
      return {"perm": jax.random.permutation(key, ctx.labeled.shape[0]), "calls": 1}
    return {"perm": prev["perm"], "calls": int(prev["calls"]) + 1}

  def score(key, ctx):
    return ctx.fit_extra["bias"]

  def pick(key, ctx, aux, budget):
    perm = np.asarray(ctx.state["perm"])
    free = perm[~np.asarray(ctx.labeled)[perm]]
    return free[:budget], {"calls": int(ctx.state["calls"]), "bias": float(aux)}

  return jal.Strategy("toy", score, pick, fit=fit, state=state)


def _run(data, net, calls, **kw):
  return jal.run_loop(jax.random.key(3), data, net, TRAIN, _toy(calls), LOOP, verbose=False,
                      **kw)


def test_fit_extra_reaches_score_and_state_is_carried(data, net):
  calls = []
  h = _run(data, net, calls)
  assert calls == ["fit"] * 4
  infos = [r["pick_info"] for r in h.rounds[:-1]]
  assert [i["calls"] for i in infos] == [1, 2, 3]
  # The bias is the one the fit of that round drew from its own key.
  k_rounds = jax.random.split(jax.random.key(3))[1]
  for r, info in enumerate(infos):
    k_fit = jax.random.split(jax.random.fold_in(k_rounds, r))[0]
    want = float(jax.random.uniform(jax.random.fold_in(k_fit, 1)))
    assert info["bias"] == pytest.approx(want, abs=0)
  # Picks follow the permutation drawn once in round 0.
  k_sel0 = jax.random.split(jax.random.fold_in(k_rounds, 0))[1]
  perm = np.asarray(jax.random.permutation(
      jax.random.fold_in(k_sel0, jal.loop.STATE_STREAM), len(data.y_train)))
  labeled = jal.initial_mask(jax.random.split(jax.random.key(3))[0], len(data.y_train), 20)
  for r in h.rounds[:-1]:
    free = perm[~labeled[perm]]
    assert r["queried"] == free[:10].tolist()
    labeled = jal.label(labeled, r["queried"])


class _Killed(Exception):
  pass


def test_killed_run_resumes_state_and_skips_done_rounds(data, net, tmp_path):
  ref = _run(data, net, [], workdir=str(tmp_path / "ref"))

  def kill_after_round_1(r, rec):
    if r == 1:
      raise _Killed

  work = str(tmp_path / "resumed")
  with pytest.raises(_Killed):
    _run(data, net, [], workdir=work, on_round=kill_after_round_1)
  calls = []
  got = _run(data, net, calls, workdir=work)
  assert calls == ["fit"] * 2  # rounds 0 and 1 were not redone
  assert [r["queried"] for r in got.rounds] == [r["queried"] for r in ref.rounds]
  assert [r["pick_info"]["calls"] for r in got.rounds[:-1]] == [1, 2, 3]
  assert got.finished and got.wall_seconds > 0


def test_pick_must_return_indices_and_info(data, net):
  bad = jal.Strategy("bad", lambda k, c: None,
                     lambda k, c, a, b: jnp.arange(b) + 20)
  mask = jal.initial_mask(jax.random.key(0), len(data.y_train), 20)
  res = jal.fit(jax.random.key(0), net, TRAIN, data.x_train, data.y_train, jnp.asarray(mask))
  ctx = jal.Context(net, res.variables, data.x_train, data.y_train, jnp.asarray(mask), 10)
  with pytest.raises(TypeError, match="pick must return"):
    jal.select(bad, jax.random.key(1), ctx, 5)
