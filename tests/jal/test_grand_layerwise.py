"""Layer-wise GraNd (jal.scores.grand, method="layerwise") against the reference
vmap(grad) on every model family, and the per-layer norm forms against brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jal
from jal import scores
from jal.models import MODELS, per_example
from tests.jal.batchnorm_stats import perturbed_batchnorm

K = 10
CASES = [
    ("mlp", (8, 8, 1), {"hidden": (16, 12)}),
    ("lenet", (28, 28, 1), {}),
    ("lenet", (8, 8, 1), {}),
    pytest.param("resnet18", (28, 28, 1), {"stem": "imagenet", "width": 4},
                 marks=pytest.mark.slow),
    pytest.param("resnet18", (32, 32, 3), {"stem": "cifar", "width": 4},
                 marks=pytest.mark.slow),
    pytest.param("resnet18", (32, 32, 3), {"stem": "cifar_pool", "width": 4},
                 marks=pytest.mark.slow),
]


def _with_running_stats(variables, rng):
  return perturbed_batchnorm(variables, rng)


def _id(case):
  name, shape, kw = case.values if hasattr(case, "values") else case
  return f"{name}-{shape[0]}-{kw.get('stem', '')}"


@pytest.mark.parametrize("name,shape,kw", CASES, ids=[_id(c) for c in CASES])
def test_layerwise_equals_vmap_grad(name, shape, kw):
  rng = np.random.default_rng(0)
  net = jal.make_net(name, shape, K, **kw)
  variables = _with_running_stats(net.init(jax.random.key(1)), rng)
  n = 7  # chunk 4: the last chunk is padded
  x = jnp.asarray(rng.normal(size=(n, *shape)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, K, size=n).astype(np.int32))
  want = np.asarray(scores.grand(net, variables, x, y, 4, method="vmap"))
  got = np.asarray(scores.grand(net, variables, x, y, 4, method="layerwise"))
  auto = np.asarray(scores.grand(net, variables, x, y, 4))
  np.testing.assert_allclose(got, want, rtol=1e-4)
  np.testing.assert_array_equal(auto, got)
  assert np.all(want > 0) and np.all(np.isfinite(want))


class _Untapped(nnx.Module):
  """A model with one plain flax layer that jal's taps cannot see."""

  def __init__(self, input_shape, num_classes, rngs):
    h, w, c = input_shape
    self.body = jal.models.layers.Linear(h * w * c, 8, rngs=rngs)
    self.head = nnx.Linear(8, num_classes, rngs=rngs)
    self.embed_dim, self.dropout_rate = 8, 0.0

  def __call__(self, x, *, train=False, dropout=None, rngs=None):
    h = jax.nn.relu(self.body(x.reshape(x.shape[0], -1)))
    return self.head(h), h


def test_untapped_parameters_fall_back_to_vmap(monkeypatch):
  monkeypatch.setitem(MODELS, "untapped", _Untapped)
  net = jal.make_net("untapped", (4, 4, 1), K)
  v = net.init(jax.random.key(0))
  x = jnp.ones((3, 4, 4, 1))
  y = jnp.array([0, 1, 2])
  with pytest.raises(NotImplementedError, match="method='vmap'"):
    scores.grand(net, v, x, y, method="layerwise")
  np.testing.assert_allclose(scores.grand(net, v, x, y),
                             scores.grand(net, v, x, y, method="vmap"), rtol=1e-6)


def test_grand_rejects_unknown_method():
  net = jal.make_net("mlp", (4, 4, 1), K, hidden=(4,))
  with pytest.raises(ValueError, match="method must be one of"):
    scores.grand(net, net.init(jax.random.key(0)), jnp.ones((2, 4, 4, 1)),
                 jnp.array([0, 1]), method="exact")


@pytest.mark.parametrize("p,k,o", [(9, 5, 4), (3, 40, 30), (1, 6, 7)])
def test_patch_norm_forms_equal_brute_force(p, k, o):
  """Both the Gram and the materialised forms (whichever the shape picks) and the 1-position
  shortcut equal ‖Σ_p a_p ⊗ g_p‖² computed with NumPy."""
  rng = np.random.default_rng(p * 100 + k)
  a = rng.normal(size=(5, p, k))
  g = rng.normal(size=(5, p, o))
  want = np.array([np.sum((a[i].T @ g[i]) ** 2) for i in range(5)])
  payload = per_example.Payload("linear", False, 1, jnp.asarray(a, jnp.float32))
  got = per_example.sq_norms(payload, jnp.asarray(g, jnp.float32))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert per_example.gram_is_cheaper(9, 5, 4) is False
  assert per_example.gram_is_cheaper(3, 40, 30) is True


def test_batchnorm_norm_equals_brute_force():
  rng = np.random.default_rng(0)
  xhat = rng.normal(size=(4, 3, 3, 5))
  g = rng.normal(size=(4, 3, 3, 5))
  want = ((g * xhat).sum((1, 2)) ** 2).sum(1) + (g.sum((1, 2)) ** 2).sum(1)
  payload = per_example.Payload("batchnorm", (True, True), 2, jnp.asarray(xhat, jnp.float32))
  np.testing.assert_allclose(per_example.sq_norms(payload, jnp.asarray(g, jnp.float32)), want,
                             rtol=1e-5)
