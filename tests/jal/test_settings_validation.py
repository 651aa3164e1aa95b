"""Bad settings and inputs fail at once with a message that names them (issue 15, point 4)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jal


@pytest.mark.parametrize("kwargs,match", [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": -1e-3}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"learning_rate": float("inf")}, "learning_rate"),
    ({"stop_train_acc": -1.0}, "stop_train_acc"),
    ({"stop_train_acc": 1.5}, "stop_train_acc"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"superloss_lam": 0.0}, "superloss_lam"),
    ({"superloss_tau": -1.0}, "superloss_tau"),
    ({"epochs": 0}, "epochs"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_train_config_rejects(kwargs, match):
  with pytest.raises(ValueError, match=match):
    jal.TrainConfig(**kwargs)


@pytest.mark.parametrize("dropout", [1.5, -0.5, 1.0])
def test_make_net_rejects_dropout_outside_unit_interval(dropout):
  with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
    jal.make_net("mlp", (8, 8, 1), 10, dropout=dropout)


def test_make_net_rejects_one_class():
  with pytest.raises(ValueError, match="num_classes"):
    jal.make_net("mlp", (8, 8, 1), 1)


@pytest.fixture(scope="module")
def model():
  net = jal.make_net("mlp", (8, 8, 1), 3, hidden=(4,))
  return net, net.init(jax.random.key(0))


@pytest.mark.parametrize("score", ["el2n", "grand"])
@pytest.mark.parametrize("y,match", [
    (np.zeros(5, np.int32), r"y must be \[n\] = \[6\]"),
    (np.array([0, 1, 2, 3, 0, 1], np.int32), r"labels must lie in \[0, 3\)"),
    (np.array([0, 1, 2, -3, 0, 1], np.int32), r"labels must lie in \[0, 3\)"),
    (np.zeros(6, np.float32), "labels must be integers"),
])
def test_scores_validate_labels(model, score, y, match):
  net, v = model
  x = jnp.zeros((6, 8, 8, 1))
  with pytest.raises(ValueError, match=match):
    getattr(jal.scores, score)(net, v, x, jnp.asarray(y))


def test_scores_reject_chunk_size_zero(model):
  net, v = model
  with pytest.raises(ValueError, match="chunk_size"):
    jal.scores.el2n(net, v, jnp.zeros((6, 8, 8, 1)), jnp.zeros(6, jnp.int32), 0)


def test_scores_stay_traceable_under_an_outer_jit(model):
  net, v = model
  x, y = jnp.zeros((6, 8, 8, 1)), jnp.zeros(6, jnp.int32)
  f = jax.jit(lambda yy: jal.scores.el2n(net, v, x, yy))
  np.testing.assert_allclose(f(y), jal.scores.el2n(net, v, x, y), rtol=1e-6)
