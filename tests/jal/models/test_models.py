"""Tests for jal.models: make_net, shapes, parameter counts, BatchNorm, dropout, Net identity."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jal
from jal.models import MODELS, STEMS

K = 10
N = 6


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@functools.cache
def _abstract(net):
  """Shapes of ``net.init``'s variables without allocating them (cached per ``Net``)."""
  return jax.eval_shape(net.init, jax.random.key(0))


def _random_variables(net, seed):
  """Concrete variables of ``net``'s shapes filled by NumPy (He-scaled kernels, unit
  BatchNorm scales, zero biases and running means, unit running variances).

  ``net.init`` itself is exercised elsewhere; eagerly initialising a ResNet compiles
  dozens of small random-number kernels, which is too slow for this suite.
  """
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-2].key
    if name == "kernel":
      fan_in = int(np.prod(s.shape[:-1]))
      return jnp.asarray(rng.normal(scale=np.sqrt(2.0 / fan_in), size=s.shape), s.dtype)
    if name in ("scale", "var"):
      return jnp.ones(s.shape, s.dtype)
    assert name in ("bias", "mean"), path
    return jnp.zeros(s.shape, s.dtype)

  return jax.tree_util.tree_map_with_path(fill, _abstract(net))


def _out_shapes(net, input_shape, n=N):
  v = _abstract(net)
  x = jax.ShapeDtypeStruct((n, *input_shape), jnp.float32)
  logits, emb, _ = jax.eval_shape(lambda v, x: net.apply(v, x), v, x)
  return logits.shape, emb.shape


def _x(shape, n=N, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32))


def _leaf(tree, *path):
  for p in path:
    tree = tree[p]
  return np.asarray(tree[...])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mlp():
  net = jal.make_net("mlp", (8, 8, 1), K, hidden=(16,), dropout=0.5)
  return net, net.init(jax.random.key(0))


@pytest.fixture(scope="module")
def resnet():
  net = jal.make_net("resnet18", (8, 8, 1), K, width=4)
  return net, _random_variables(net, 0)


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("train",))
def _apply(net, variables, x, train=False):
  return net.apply(variables, x, train=train)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name,shape,kwargs,embed_dim", [
    ("mlp", (8, 8, 1), dict(hidden=(16,)), 16),
    ("mlp", (8, 8, 3), dict(hidden=(32, 16)), 16),
    ("lenet", (8, 8, 1), {}, 84),
    ("lenet", (28, 28, 1), {}, 84),
    ("lenet", (32, 32, 3), {}, 84),
    ("resnet18", (8, 8, 1), dict(width=4), 32),
    ("resnet18", (8, 8, 3), dict(width=4), 32),
    ("resnet18", (16, 16, 1), dict(width=4, stem="imagenet"), 32),
    ("resnet18", (16, 16, 3), dict(width=4, stem="imagenet"), 32),
])
def test_output_shapes(name, shape, kwargs, embed_dim):
  net = jal.make_net(name, shape, K, **kwargs)
  assert net.name == name and net.num_classes == K and net.embed_dim == embed_dim
  assert _out_shapes(net, shape) == ((N, K), (N, embed_dim))


def test_concrete_outputs_and_head_on_embedding(mlp, resnet):
  # logits = head(embedding): the embedding is the penultimate activation (eval mode).
  lenet = jal.make_net("lenet", (8, 8, 1), K)
  for net, v in (mlp, resnet, (lenet, _random_variables(lenet, 1))):
    logits, emb, _ = _apply(net, v, _x((8, 8, 1)))
    assert logits.shape == (N, K) and emb.shape == (N, net.embed_dim)
    assert np.all(np.isfinite(np.asarray(logits)))
    w = _leaf(v.params, "head", "kernel").astype(np.float64)
    b = _leaf(v.params, "head", "bias").astype(np.float64)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(emb, np.float64) @ w + b,
                               rtol=1e-4, atol=1e-5)


def test_lenet_padding_paths():
  valid = _abstract(jal.make_net("lenet", (28, 28, 1), K)).params
  same = _abstract(jal.make_net("lenet", (8, 8, 1), K)).params
  # 28×28 VALID: 28 → 24 → 12 → 8 → 4, so 16·4·4 = 256 features into fc1.
  assert valid["fc1"]["kernel"].shape == (256, 120)
  # 8×8 SAME: 8 → 4 → 2, so 16·2·2 = 64 features.
  assert same["fc1"]["kernel"].shape == (64, 120)
  assert valid["conv1"]["kernel"].shape == (5, 5, 1, 6)
  assert valid["conv2"]["kernel"].shape == (5, 5, 6, 16)


# ----------------------------------------------------------------------------- param counts


def test_lenet5_param_count():
  p = _abstract(jal.make_net("lenet", (28, 28, 1), K)).params
  expected = {
      "conv1": 6 * (25 + 1),          # 156
      "conv2": 16 * (6 * 25 + 1),     # 2416
      "fc1": 256 * 120 + 120,         # 30840
      "fc2": 120 * 84 + 84,           # 10164
      "head": 84 * 10 + 10,           # 850
  }
  assert {k: _count(p[k]) for k in expected} == expected
  assert _count(p) == sum(expected.values()) == 44426


def test_mlp_param_count():
  p = _abstract(jal.make_net("mlp", (8, 8, 1), K, hidden=(16,))).params
  assert _count(p) == (64 * 16 + 16) + (16 * 10 + 10)


def _resnet18_counts(c_in, width, k, stem="cifar"):
  """Hand count of (params, BatchNorm channels) of ResNet-18."""
  params = 0
  if c_in == 1:
    params += 1 * 3 + 3  # 1×1 adapter with bias.
    c_in = 3
  ksz = 9 if stem == "cifar" else 49
  params += ksz * c_in * width + 2 * width
  bn = width
  cin = width
  for mult in (1, 2, 4, 8):
    cout = width * mult
    for i in range(2):
      params += 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout
      bn += 2 * cout
      if cin != cout or (mult > 1 and i == 0):
        params += cin * cout + 2 * cout
        bn += cout
      cin = cout
  params += cin * k + k
  return params, bn


def test_resnet18_standard_param_count():
  net = jal.make_net("resnet18", (32, 32, 3), K)  # width=64, cifar stem
  v = _abstract(net)
  assert _count(v.params) == 11_173_962
  assert _resnet18_counts(3, 64, K) == (11_173_962, 4800)
  assert _count(v.extra) == 2 * 4800  # Running mean and variance.
  assert net.embed_dim == 512


@pytest.mark.parametrize("c,stem", [(1, "cifar"), (3, "cifar"), (1, "imagenet"),
                                    (3, "imagenet")])
def test_resnet18_small_param_counts_and_adapter(c, stem):
  net = jal.make_net("resnet18", (16, 16, c), K, width=4, stem=stem)
  v = _abstract(net)
  params, bn = _resnet18_counts(c, 4, K, stem)
  assert _count(v.params) == params
  assert _count(v.extra) == 2 * bn
  assert ("adapter" in v.params) == (c == 1)
  if c == 1:
    assert v.params["adapter"]["kernel"].shape == (1, 1, 1, 3)
  assert v.params["conv1"]["kernel"].shape == ((3, 3) if stem == "cifar" else (7, 7)) + (3, 4)


@pytest.mark.parametrize("stem", STEMS)
def test_gray_stem_folds_the_adapter_exactly(stem):
  """The grayscale stem runs as one convolution with the 1×1 adapter folded into its kernel
  (and its bias into a border-aware offset); it must equal the two layers run one after the
  other (what a taps recording runs), in value and in the gradient of every parameter."""
  from jal.models import resnet, taps
  net = jal.make_net("resnet18", (12, 12, 1), K, width=4, stem=stem)
  v = _random_variables(net, 3)
  rng = np.random.default_rng(4)
  params = jax.tree_util.tree_map_with_path(  # a bias that the stem's padding cannot see
      lambda path, a: jnp.asarray(rng.normal(size=a.shape), a.dtype)
      if "adapter" in str(path) and "bias" in str(path) else a, v.params)
  x = _x((12, 12, 1), n=3, seed=5)

  @functools.partial(jax.jit, static_argnums=1)
  def stems(p, folded):
    model = nnx.merge(net.graphdef, p, v.extra)
    if folded:
      return resnet._gray_stem(model.adapter, model.conv1, x)
    with taps.recording():
      return model.conv1(model.adapter(x))

  folded, plain = stems(params, True), stems(params, False)
  assert np.abs(np.asarray(plain)).max() > 0.1
  np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-5)
  g = jnp.asarray(rng.normal(size=plain.shape), jnp.float32)
  grads = [jax.jit(jax.grad(lambda p, f=f: jnp.sum(stems(p, f) * g)))(params)
           for f in (True, False)]
  for name in ("adapter", "conv1"):
    for a, b in zip(jax.tree.leaves(grads[0][name]), jax.tree.leaves(grads[1][name]),
                    strict=True):
      assert np.abs(np.asarray(b)).max() > 0
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(np.asarray(b)).max())
  if stem != "imagenet":
    return
  # The whole net takes the folded path outside a recording (one stem: compiles are slow).
  variables = v._replace(params=params)

  @functools.partial(jax.jit, static_argnums=1)
  def logits(variables, recorded):
    if not recorded:
      return net.apply(variables, x)[0]
    with taps.recording():
      return net.apply(variables, x)[0]

  np.testing.assert_allclose(logits(variables, False), logits(variables, True), rtol=1e-4,
                             atol=1e-5)


# ----------------------------------------------------------------------------- BatchNorm


def test_batchnorm_train_updates_running_stats(resnet):
  net, v = resnet
  x = _x((8, 8, 1), seed=1)
  _, _, new = _apply(net, v, x, train=True)
  old_leaves, new_leaves = jax.tree.leaves(v.extra), jax.tree.leaves(new)
  assert jax.tree.structure(v.extra) == jax.tree.structure(new)
  assert len(old_leaves) == 2 * 20  # mean + var of 20 BatchNorms (17 + 3 shortcuts).
  assert all(np.abs(np.asarray(a) - np.asarray(b)).max() > 0
             for a, b in zip(old_leaves, new_leaves, strict=True))
  # Stem BatchNorm by hand: momentum 0.9 (PyTorch's 0.1), biased batch variance.
  model = nnx.merge(net.graphdef, v.params, v.extra)
  h = np.asarray(model.conv1(model.adapter(x)), np.float64)
  np.testing.assert_allclose(_leaf(new, "bn1", "mean"), 0.9 * 0.0 + 0.1 * h.mean((0, 1, 2)),
                             rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(_leaf(new, "bn1", "var"), 0.9 * 1.0 + 0.1 * h.var((0, 1, 2)),
                             rtol=1e-5)


def test_batchnorm_eval_keeps_stats_and_is_deterministic(resnet):
  net, v = resnet
  x = _x((8, 8, 1), seed=2)
  logits1, emb1, extra = _apply(net, v, x)
  logits2, emb2, _ = _apply(net, v, x)
  for a, b in zip(jax.tree.leaves(v.extra), jax.tree.leaves(extra), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(np.asarray(logits1), np.asarray(logits2))
  np.testing.assert_array_equal(np.asarray(emb1), np.asarray(emb2))
  # Eval mode uses running statistics: a row's output does not depend on its batch mates.
  alone, _, _ = _apply(net, v, x[:1])
  np.testing.assert_allclose(np.asarray(alone)[0], np.asarray(logits1)[0], rtol=1e-5, atol=1e-6)
  # Train mode uses batch statistics: it does.
  train_logits, _, _ = _apply(net, v, x, train=True)
  assert np.abs(np.asarray(train_logits) - np.asarray(logits1)).max() > 1e-4


# ----------------------------------------------------------------------------- dropout


def test_dropout(mlp):
  net, v = mlp
  assert net.dropout == 0.5
  x = _x((8, 8, 1), seed=3)
  eval1 = np.asarray(net.apply(v, x)[0])
  np.testing.assert_array_equal(eval1, np.asarray(net.apply(v, x, train=False)[0]))
  np.testing.assert_array_equal(eval1, np.asarray(net.apply(v, x, dropout=False)[0]))
  # Eval ignores a key.
  np.testing.assert_array_equal(eval1, np.asarray(net.apply(v, x, key=jax.random.key(0))[0]))
  d1 = np.asarray(net.apply(v, x, dropout=True, key=jax.random.key(1))[0])
  d1b = np.asarray(net.apply(v, x, dropout=True, key=jax.random.key(1))[0])
  d2 = np.asarray(net.apply(v, x, dropout=True, key=jax.random.key(2))[0])
  np.testing.assert_array_equal(d1, d1b)
  assert np.abs(d1 - d2).max() > 1e-3 and np.abs(d1 - eval1).max() > 1e-3
  # train=True switches dropout on too; dropout=False overrides it.
  t1 = np.asarray(net.apply(v, x, train=True, key=jax.random.key(1))[0])
  np.testing.assert_array_equal(t1, d1)
  np.testing.assert_array_equal(
      eval1, np.asarray(net.apply(v, x, train=True, dropout=False, key=jax.random.key(1))[0]))
  # The embedding is taken before dropout.
  np.testing.assert_array_equal(np.asarray(net.apply(v, x)[1]),
                                np.asarray(net.apply(v, x, dropout=True, key=jax.random.key(1))[1]))


def test_dropout_zero_nets():
  for name, shape, kw in (("mlp", (8, 8, 1), dict(hidden=(16,))), ("lenet", (8, 8, 1), {}),
                          ("resnet18", (8, 8, 1), dict(width=4))):
    assert jal.make_net(name, shape, K, **kw).dropout == 0.0
  net = jal.make_net("mlp", (8, 8, 1), K, hidden=(16,))
  v = net.init(jax.random.key(0))
  x = _x((8, 8, 1), seed=4)
  np.testing.assert_array_equal(np.asarray(net.apply(v, x)[0]),
                                np.asarray(net.apply(v, x, dropout=True,
                                                     key=jax.random.key(1))[0]))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args,kwargs,match", [
    (("vgg", (8, 8, 1), K), {}, "unknown model"),
    (("mlp", (8, 8), K), {}, "input_shape"),
    (("mlp", (8, 8, 1, 1), K), {}, "input_shape"),
    (("lenet", (3, 3, 1), K), {}, "larger images"),
    (("lenet", (8, 3, 1), K), {}, "larger images"),
    (("resnet18", (8, 8, 1), K), dict(stem="bogus"), "stem"),
    (("mlp", (8, 8, 1), K), dict(stem="cifar"), r"'mlp' takes no option 'stem'"),
    (("lenet", (8, 8, 1), K), dict(hidden=(4,), width=2), r"no option 'hidden', 'width'"),
])
def test_make_net_errors(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    jal.make_net(*args, **kwargs)


def test_unknown_model_lists_choices():
  with pytest.raises(ValueError) as info:
    jal.make_net("nope", (8, 8, 1), K)
  for name in MODELS:
    assert repr(name) in str(info.value)
  assert set(STEMS) == {"cifar", "cifar_pool", "imagenet"}


# ----------------------------------------------------------------------------- Net identity


def test_equal_nets_are_equal_and_share_jit_cache():
  a = jal.make_net("mlp", (8, 8, 1), K, hidden=(16,))
  b = jal.make_net("mlp", (8, 8, 1), K, hidden=(16,))
  assert a == b and hash(a) == hash(b)
  for other in (jal.make_net("mlp", (8, 8, 1), K, hidden=(32,)),
                jal.make_net("mlp", (8, 8, 1), K + 1, hidden=(16,)),
                jal.make_net("mlp", (8, 8, 1), K, hidden=(16,), dropout=0.25),
                jal.make_net("lenet", (8, 8, 1), K)):
    assert a != other
  r1 = jal.make_net("resnet18", (8, 8, 1), K, width=4)
  r2 = jal.make_net("resnet18", (8, 8, 1), K, width=4)
  assert r1 == r2 and hash(r1) == hash(r2)
  assert r1 != jal.make_net("resnet18", (8, 8, 1), K, width=4, stem="imagenet")

  traces = []

  @functools.partial(jax.jit, static_argnums=(0,))
  def f(net, v, x):
    traces.append(net.name)
    return net.apply(v, x)[0]

  v = a.init(jax.random.key(0))
  x = _x((8, 8, 1))
  np.testing.assert_array_equal(np.asarray(f(a, v, x)), np.asarray(f(b, v, x)))
  assert traces == ["mlp"]  # b hit a's cache entry.


# ----------------------------------------------------------------------------- init


def test_init_is_vmappable(mlp):
  net, _ = mlp
  keys = jax.random.split(jax.random.key(5), 3)
  vs = jax.vmap(net.init)(keys)
  ref_leaves = jax.tree.leaves(_abstract(net).params)
  for leaf, ref in zip(jax.tree.leaves(vs.params), ref_leaves, strict=True):
    assert leaf.shape == (3, *ref.shape)
  k0 = _leaf(vs.params, "layers", 0, "kernel")
  assert np.abs(k0[0] - k0[1]).max() > 1e-3 and np.abs(k0[1] - k0[2]).max() > 1e-3
  # Each slice is what init gives for that key alone.
  for i in range(3):
    single = net.init(keys[i])
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(vs.params), strict=True):
      np.testing.assert_allclose(np.asarray(b)[i], np.asarray(a), rtol=1e-6, atol=1e-7)


def test_init_is_vmappable_with_batchnorm():
  net = jal.make_net("resnet18", (8, 8, 1), K, width=4)
  vs = jax.eval_shape(jax.vmap(net.init), jax.random.split(jax.random.key(0), 3))
  ref = _abstract(net)
  for leaf, r in zip(jax.tree.leaves(vs), jax.tree.leaves(ref), strict=True):
    assert leaf.shape == (3, *r.shape)


def test_init_same_key_same_params(mlp):
  net, v = mlp
  again = net.init(jax.random.key(0))
  for a, b in zip(jax.tree.leaves(v.params), jax.tree.leaves(again.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_options_of_a_user_registered_model_are_its_own_business(monkeypatch):
  """Only the built-in models' options are checked: a builder registered in ``MODELS`` (new,
  or replacing a built-in) receives whatever options it is given."""
  seen = {}

  def builder(input_shape, num_classes, rngs, width=1, **kw):
    seen.update(kw, width=width)
    return jal.models.mlp.MLP(int(np.prod(input_shape)), num_classes, hidden=(width,), rngs=rngs)

  monkeypatch.setitem(MODELS, "mine", builder)
  assert jal.make_net("mine", (4, 4, 1), K, width=3, colour="red").embed_dim == 3
  assert seen == {"width": 3, "colour": "red"}
  monkeypatch.setitem(MODELS, "mlp", builder)
  jal.make_net("mlp", (4, 4, 1), K, stem="any")
  assert seen["stem"] == "any"
