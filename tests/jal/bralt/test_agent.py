"""BRAL-T's agent reuse (App. C.3, Table 7): within a run, across runs, and on resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal
from jal.bralt import BRALT_STRATEGIES, agent, reward_net

SMALL = dict(num_samplings=2, actions=2, n_state_clusters=3, n_label_clusters=3,
             steps_per_sampling=3, max_points=64, kmeans_iters=10, rel_epsilon=1e-2,
             max_iterations=500)
LOOP = jal.LoopConfig(init_size=60, budget=15, rounds=2)
TRAIN = jal.TrainConfig(epochs=3, superloss=True)


def test_parse_rounds():
  assert agent.parse_rounds(None) is None and agent.parse_rounds("") is None
  assert agent.parse_rounds("20, 0") == (0, 20)
  assert agent.parse_rounds([3, 0, 3]) == (0, 3)
  assert agent.parse_rounds(5) == (5,)
  for bad in ("a", "-1", "1.5", [0.5]):
    with pytest.raises(ValueError, match="agent_rounds"):
      agent.parse_rounds(bad)


def test_state_and_file_round_trip(tmp_path):
  model = reward_net.init_reward_model(jax.random.key(0), 8, 4)
  buf = reward_net.push(reward_net.init_buffer(16, 8, 4),
                        jax.random.normal(jax.random.key(1), (10, 8)),
                        jax.random.normal(jax.random.key(2), (10, 4)),
                        -jax.random.uniform(jax.random.key(3), (10,)), jnp.ones(10, bool))
  model, _ = reward_net.train_steps(jax.random.key(4), model, buf, steps=3, batch_size=4)
  s, a = jax.random.normal(jax.random.key(5), (6, 8)), jax.random.normal(jax.random.key(6), (6, 4))
  path = agent.save_agent(tmp_path / "a.msgpack", {**agent.to_state(model), "round": 3})
  back = agent.load_agent(path)
  assert int(back["round"]) == 3
  np.testing.assert_array_equal(reward_net.predict_reward(agent.from_state(back), s, a),
                                reward_net.predict_reward(model, s, a))
  with pytest.raises(FileNotFoundError, match="agent_file"):
    agent.load_agent(tmp_path / "missing.msgpack")
  (tmp_path / "junk").write_bytes(b"not msgpack at all")
  with pytest.raises(ValueError, match="not a BRAL-T agent file"):
    agent.load_agent(tmp_path / "junk")


@pytest.fixture(scope="module")
def digits():
  return jal.data.load("digits")


def _run(digits, hidden=16, **kw):
  net = jal.make_net("mlp", digits.x_train.shape[1:], digits.num_classes, hidden=(hidden,))
  on_round = kw.pop("on_round", None)
  workdir = kw.pop("workdir", None)
  strategy = BRALT_STRATEGIES["bral_t"](env=SMALL, pad_to=128, workers=1, **kw)
  return jal.run_loop(jax.random.key(0), digits, net, TRAIN, strategy, LOOP, verbose=False,
                      on_round=on_round, workdir=workdir)


@pytest.fixture(scope="module")
def runs(digits, tmp_path_factory):
  d = tmp_path_factory.mktemp("agents")
  return {"dir": d, "plain": _run(digits), "saved": _run(digits, agent_dir=str(d)),
          "first": _run(digits, agent_rounds="0")}


def _queried(h):
  return [r["queried"] for r in h.rounds[:-1]]


@pytest.mark.slow  # the module's three BRAL-T runs take ~50 s on 2 cores (CI time)
def test_saving_agents_does_not_change_the_run(runs):
  # agent_dir alone trains a fresh agent every round with the plain round's keys.
  assert _queried(runs["saved"]) == _queried(runs["plain"])
  assert sorted(p.name for p in runs["dir"].iterdir()) == ["agent_round0.msgpack",
                                                           "agent_round1.msgpack"]


@pytest.mark.slow  # the module's three BRAL-T runs take ~50 s on 2 cores (CI time)
def test_one_agent_reused_in_later_rounds(runs):
  first = runs["first"]
  assert _queried(first)[0] == _queried(runs["plain"])[0]
  info0, info1 = (r["pick_info"] for r in first.rounds[:-1])
  assert "reward_loss_first" in info0 and "agent_round" not in info0
  assert info1["agent_round"] == 0 and "reward_loss_first" not in info1
  assert _queried(first)[1] != _queried(runs["plain"])[1]  # round 1 did not train a new one


@pytest.mark.slow  # the module's three BRAL-T runs take ~50 s on 2 cores (CI time)
def test_another_runs_agent_is_used_in_every_round(runs, digits):
  path = str(runs["dir"] / "agent_round0.msgpack")
  other = _run(digits, agent_file=path)
  assert [r["pick_info"]["agent_round"] for r in other.rounds[:-1]] == [-1, -1]
  # The round-0 agent with the round-0 keys: the round-0 picks of the run that trained it;
  # in round 1, the picks of the run that reused it there.
  assert _queried(other) == _queried(runs["first"])
  with pytest.raises(ValueError, match="16-dimensional"):
    _run(digits, hidden=8, agent_file=path)


class _Killed(Exception):
  pass


@pytest.mark.slow  # the module's three BRAL-T runs take ~50 s on 2 cores (CI time)
def test_resumed_run_reuses_the_checkpointed_agent(runs, digits, tmp_path):
  def kill(r, rec):
    if r == 0:
      raise _Killed

  with pytest.raises(_Killed):
    _run(digits, agent_rounds="0", workdir=str(tmp_path), on_round=kill)
  got = _run(digits, agent_rounds="0", workdir=str(tmp_path))
  assert _queried(got) == _queried(runs["first"])
  assert got.rounds[1]["pick_info"]["agent_round"] == 0
