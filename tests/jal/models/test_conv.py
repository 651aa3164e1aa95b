"""jal.models.conv: every lowering equals lax.conv_general_dilated, in value and gradient, on
every convolution shape jal's models use; the dispatch rule; the model-level equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jal
from jal.models import conv
from jal.models.layers import conv_shapes

DN = ("NHWC", "HWIO", "NHWC")
MODEL_SPECS = [
    ("lenet", (28, 28, 1), {}), ("lenet", (8, 8, 1), {}),
    ("resnet18", (28, 28, 1), {"stem": "imagenet"}),
    ("resnet18", (32, 32, 3), {"stem": "cifar"}),
    ("resnet18", (32, 32, 3), {"stem": "cifar_pool"}),
]


def _model_conv_shapes():
  """(input HWC, kernel, strides, padding) of every convolution of the models above."""
  out = set()
  for name, shape, kw in MODEL_SPECS:
    found = conv_shapes(jal.make_net(name, shape, 10, **kw), shape)
    out.update(found)
    if found[0][1] == (1, 1, 1, 3):  # ResNet's grayscale stem also runs folded, on 1 channel
      (h, w, _), (kh, kw_, _, o), strides, pad = found[1]
      out.add(((h, w, 1), (kh, kw_, 1, o), strides, pad))
  return sorted(out, key=str)


SHAPES = _model_conv_shapes()


def test_the_models_use_the_expected_shapes():
  kernels = {s[1] for s in SHAPES}
  assert (7, 7, 3, 64) in kernels and (1, 1, 1, 3) in kernels and (5, 5, 1, 6) in kernels
  assert (3, 3, 256, 512) in kernels and (1, 1, 256, 512) in kernels
  assert any(s[0] == (1, 1, 512) for s in SHAPES)  # ImageNet stem at 28×28: layer4 is 1×1
  assert len(SHAPES) >= 20


def _inputs(specs, n, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for in_shape, kshape, strides, padding in specs:
    x = rng.standard_normal((n, *in_shape)).astype(np.float32)
    w = (rng.standard_normal(kshape) / np.sqrt(np.prod(kshape[:3]))).astype(np.float32)
    y = lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DN)
    ct = rng.standard_normal(y.shape).astype(np.float32)
    out.append((x, w, ct))
  return out


def _value_and_grads(fn, specs, arrays):
  """``[(y, dx, dw)]`` of ``fn`` on every spec, in one jitted program (one compile)."""
  def run(arrays):
    res = []
    for (_, _, strides, padding), (x, w, ct) in zip(specs, arrays):
      f = lambda x, w, s=strides, p=padding: fn(x, w, s, p)
      y, vjp = jax.vjp(f, x, w)
      res.append((y, *vjp(ct)))
    return res
  return jax.jit(run)(arrays)


def _xla(x, w, strides, padding):
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DN)


def _assert_same(got, want, label):
  for name, a, b in zip(("value", "d/dx", "d/dw"), got, want):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(b))),
                               err_msg=f"{label}: {name}")


def _check_all(fn, specs, n=2):
  arrays = _inputs(specs, n)
  got = _value_and_grads(fn, specs, arrays)
  want = _value_and_grads(_xla, specs, arrays)
  for spec, g, w in zip(specs, got, want):
    assert g[0].shape == w[0].shape
    _assert_same(g, w, str(spec))


@pytest.mark.slow  # every shape compiled again; the dispatched check is in the default suite
def test_slices_lowering_equals_xla_on_every_model_shape():
  _check_all(conv.conv_slices, SHAPES)


def _dispatched(x, w, s, p):
  return conv.conv(x, w, s, p, dimension_numbers=DN)


@pytest.mark.slow  # the default suite checks one shape per combination of lowerings
def test_dispatched_conv_equals_xla_on_every_model_shape():
  _check_all(_dispatched, SHAPES)


def test_dispatched_conv_equals_xla_on_each_combination_of_lowerings():
  """``conv`` as the models call it: forward and backward lowerings picked per shape (a
  custom JVP where they differ), on the first model shape of each combination the rules
  pick at the check's batch of 2."""
  first = {}
  for s in SHAPES:
    first.setdefault(conv.lowerings((2, *s[0]), s[1], s[2], "cpu"), s)
  assert len(first) >= 6
  _check_all(_dispatched, list(first.values()))
  assert {conv.lowerings((128, *s[0]), s[1], s[2], "cpu") for s in SHAPES} >= {
      ("xla",) * 3, ("xla", "slices", "rows"), ("rows_blocked", "xla", "rows_blocked"),
      ("rows_blocked", "rows_blocked", "rows"), ("rows_blocked",) * 3,
      ("xla", "xla", "slices"), ("slices",) * 3, ("dense",) * 3, ("dense", "slices", "slices"),
      ("rows", "slices", "slices")}
  # Strided convolutions at inference batches: the sliced matmul in cached blocks.
  assert conv.lowerings((1024, 28, 28, 3), (7, 7, 3, 64), (2, 2), "cpu")[0] == "slices_blocked"
  assert conv.lowerings((128, 28, 28, 3), (7, 7, 3, 64), (2, 2), "cpu")[0] == "xla"
  assert conv.lowerings((1024, 28, 28, 1), (7, 7, 1, 64), (2, 2), "cpu")[0] == "xla"
  assert (((28, 28, 1), (7, 7, 1, 64), (2, 2), ((3, 3), (3, 3))) in SHAPES
          or ((28, 28, 1), (7, 7, 1, 64), (2, 2), 3) in SHAPES)
  # 2×2 maps: the dense matrix forward over large batches only.
  assert conv.lowerings((1024, 2, 2, 512), (3, 3, 512, 512), (1, 1), "cpu")[0] == "dense"
  assert conv.lowerings((128, 2, 2, 512), (3, 3, 512, 512), (1, 1), "cpu")[0] == "rows"


def test_blocked_rows_lowering_equals_xla_across_blocks(monkeypatch):
  """Blocks of three images (a working-set budget of three images) on stride-1 model shapes,
  over a batch of seven: three blocks, the last padded with two zero images."""
  unit = [s for s in SHAPES if s[2] == (1, 1) and s[1][:2] == (3, 3) and s[0][0] in (7, 16)]
  assert len(unit) >= 2
  image = 4 * 49 * (3 * 64 + 3 * 64)
  assert conv.rows_block((6, 7, 7, 64), (3, 3, 64, 64), budget=3 * image + 1) == 3
  assert conv.rows_block((2, 7, 7, 64), (3, 3, 64, 64), budget=3 * image) == 2
  assert conv.rows_block((6, 7, 7, 64), (3, 3, 64, 64), budget=1) == 1
  assert conv.rows_block((128, 7, 7, 64), (3, 3, 64, 64), budget=111 * image) == 64
  assert conv.rows_block((130, 7, 7, 64), (3, 3, 64, 64), budget=50 * image) == 26
  assert conv.rows_block((131, 7, 7, 64), (3, 3, 64, 64), budget=50 * image) == 44
  for spec in unit:
    (h, w, c), (kh, kw, _, o) = spec[0], spec[1]
    monkeypatch.setattr(conv, "BLOCK_BYTES", 3 * 4 * h * w * (kw * c + kh * o))
    assert conv.rows_block((7, h, w, c), spec[1]) == 3
    _check_all(conv.conv_rows_blocked, [spec], n=7)


@pytest.mark.slow
def test_rows_lowering_equals_xla_on_every_stride_one_model_shape():
  unit = [s for s in SHAPES if s[2] == (1, 1)]
  assert len(unit) >= 10
  _check_all(conv.conv_rows, unit)


@pytest.mark.slow
def test_dense_lowering_equals_xla_on_every_small_model_shape():
  small = [s for s in SHAPES if s[0][0] * s[0][1] <= 16]
  assert len(small) >= 6
  _check_all(conv.conv_dense, small)


def test_lowerings_on_odd_paddings_and_strides():
  specs = [((5, 6, 3), (3, 2, 3, 4), strides, padding)
           for padding in ["SAME", "VALID", ((2, 0), (0, 1))]
           for strides in [(1, 1), (2, 2), (2, 1)]]
  for fn in (conv.conv_slices, conv.conv_dense):
    _check_all(fn, specs, n=3)
  # The one-axis im2col: stride 1 only; negative padding crops as in lax.
  unit = [s for s in specs if s[2] == (1, 1)] + [((5, 6, 3), (3, 3, 3, 4), (1, 1),
                                                 ((-1, 2), (1, -1)))]
  _check_all(conv.conv_rows, unit, n=3)
  with pytest.raises(ValueError, match="unit strides"):
    conv.conv_rows(jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 2)), (2, 1), "SAME")


def test_dense_kernel_drops_padding_taps():
  # A 1×1 map under a 3×3 'SAME' kernel: only the centre tap can ever touch it.
  w = jnp.arange(3 * 3 * 2 * 2, dtype=jnp.float32).reshape(3, 3, 2, 2)
  big = conv.dense_kernel(w, (1, 1), (1, 1), ((1, 1), (1, 1)))
  np.testing.assert_array_equal(big, w[1, 1])


def test_dispatch_follows_the_rule_and_falls_back(monkeypatch):
  x = jnp.ones((2, 4, 4, 64))
  w = jnp.ones((3, 3, 64, 8))
  called = []
  monkeypatch.setitem(conv._BY_NAME, "slices",
                      lambda *a: called.append("slices") or conv.conv_slices(*a))
  monkeypatch.setitem(conv._BY_NAME, "dense",
                      lambda *a: called.append("dense") or conv.conv_dense(*a))
  monkeypatch.setattr(conv, "lowerings", lambda *a, **k: ("slices",) * 3)
  conv.conv(x, w, (1, 1), "SAME", dimension_numbers=lax.conv_dimension_numbers(
      x.shape, w.shape, DN))
  assert called == ["slices"]
  # Dilation and feature groups always go to XLA.
  conv.conv(x, w, (1, 1), "SAME", rhs_dilation=(2, 2), dimension_numbers=DN)
  conv.conv(x, jnp.ones((3, 3, 32, 8)), (1, 1), "SAME", dimension_numbers=DN,
            feature_group_count=2)
  assert called == ["slices"]


def test_other_backends_keep_the_native_convolution():
  for kshape in [(3, 3, 256, 256), (1, 1, 64, 128), (7, 7, 3, 64)]:
    for backend in ("gpu", "tpu"):
      assert conv.lowerings((8, 4, 4, kshape[2]), kshape, (1, 1), backend) == ("xla",) * 3
  for shape in SHAPES:
    assert set(conv.lowerings((8, *shape[0]), shape[1], shape[2], "cpu")) <= set(
        conv.LOWERINGS)
  # LeNet-5's 5×5 convolutions stay on XLA both ways (its recorded goldens are bit-exact).
  assert conv.lowerings((8, 28, 28, 1), (5, 5, 1, 6), (1, 1), "cpu") == ("xla",) * 3


@pytest.mark.slow
@pytest.mark.parametrize("name,shape,kw", MODEL_SPECS[2:3], ids=["resnet_imagenet"])
def test_model_with_chosen_lowerings_equals_xla_everywhere(name, shape, kw, monkeypatch):
  net = jal.make_net(name, shape, 10, width=8, **kw)
  v = net.init(jax.random.key(0))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((3, *shape)), jnp.float32)
  fast = jax.jit(lambda v, x: net.apply(v, x)[0])(v, x)
  monkeypatch.setattr(conv, "lowerings", lambda *a, **k: ("xla",) * 3)
  ref = jax.jit(lambda v, x: net.apply(v, x)[0])(v, x)
  np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(ref))))


def test_blocked_slices_lowering_equals_xla_across_blocks(monkeypatch):
  """Blocks of three images over a batch of seven (the last padded) on the strided model
  shapes with 3×3 and 7×7 kernels, stems included."""
  strided = {}
  for s in SHAPES:  # the first of each kernel size: 3×3 (ResNet's stages), 7×7 (the stem)
    if s[2] == (2, 2) and s[1][0] > 1 and s[0][0] >= 7:
      strided.setdefault(s[1][0], s)
  assert set(strided) == {3, 7}
  assert conv.slices_block((7, 7, 7, 64), (3, 3, 64, 128), (2, 2), budget=1) == 1
  image = 4 * 16 * (9 * 64 + 128)
  assert conv.slices_block((1024, 7, 7, 64), (3, 3, 64, 128), (2, 2),
                           budget=128 * image) == 128
  for spec in strided.values():
    (h, w, c), (kh, kw, _, o), (sh, sw) = spec[0], spec[1], spec[2]
    monkeypatch.setattr(conv, "BLOCK_BYTES", 3 * 4 * -(-h // sh) * -(-w // sw) * (kh * kw * c + o))
    assert conv.slices_block((7, h, w, c), spec[1], spec[2]) == 3
    _check_all(conv.conv_slices_blocked, [spec], n=7)
