r"""Times every convolution lowering on every convolution shape of jal's models: the
measurement behind ``jal.models.conv.lowering``'s rules.

  python -m experiments.bench.convs --out=results/resnet_speed/convs.json

For each distinct shape (``jal.models.layers.conv_shapes`` of LeNet-5 and the three ResNet-18
stems), XLA's convolution, shifted slices + matmul, the one-axis im2col (``rows``; stride 1)
and (maps of ≤ 16 positions) the dense matmul are timed on each pass the rules choose for:
forward at batch ``--infer_batch``, input gradient and kernel gradient (each alone) at
``--train_batch``, interleaved (one call of each in turn, best of ``--repeats``); the fastest
is printed next to the lowerings the rule picks.
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

import jal
from experiments.bench import timing
from jal.models import conv
from jal.models.layers import conv_shapes

_INFER = flags.DEFINE_integer("infer_batch", 1024, "batch of the forward timings")
_TRAIN = flags.DEFINE_integer("train_batch", 128, "batch of the forward+backward timings")
_REPEATS = flags.DEFINE_integer("repeats", 5, "interleaved timed calls per lowering")
_OUT = flags.DEFINE_string("out", None, "write the JSON here too")

SPECS = [("lenet", (28, 28, 1), {}), ("resnet18", (28, 28, 1), {"stem": "imagenet"}),
         ("resnet18", (32, 32, 3), {"stem": "cifar"}),
         ("resnet18", (32, 32, 3), {"stem": "cifar_pool"})]


def _xla(x, w, strides, padding):
  return lax.conv_general_dilated(x, w, strides, padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


FNS = {"xla": _xla, "slices": conv.conv_slices, "slices_blocked": conv.conv_slices_blocked,
       "rows": conv.conv_rows, "rows_blocked": conv.conv_rows_blocked, "dense": conv.conv_dense}
PASSES = ("forward", "input_grad", "kernel_grad")


def _applicable(name: str, in_shape, strides) -> bool:
  if name == "dense":
    return in_shape[0] * in_shape[1] <= 16
  if name in ("rows", "rows_blocked"):
    return all(s == 1 for s in strides)
  return True


def time_shape(spec, infer_batch: int, train_batch: int, repeats: int) -> dict:
  """GFLOP/s of each lowering on one shape: the forward pass at ``infer_batch``, the input
  gradient and the kernel gradient (each alone, by ``jax.vjp``) at ``train_batch``."""
  in_shape, kshape, strides, padding = spec
  names = [n for n in FNS if _applicable(n, in_shape, strides)]
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.standard_normal(kshape, dtype=np.float32) * 0.01)
  out = {}
  for mode in PASSES:
    batch = infer_batch if mode == "forward" else train_batch
    x = jnp.asarray(rng.standard_normal((batch, *in_shape), dtype=np.float32))
    y_shape = _xla(x[:1], w, strides, padding).shape[1:]
    g = jnp.asarray(rng.standard_normal((batch, *y_shape), dtype=np.float32))
    fns = {}
    for n in names:
      f = lambda x, w, f=FNS[n]: f(x, w, strides, padding)
      if mode == "forward":
        fns[n] = jax.jit(lambda x, w, g, f=f: f(x, w))
      elif mode == "input_grad":
        fns[n] = jax.jit(lambda x, w, g, f=f: jax.vjp(lambda x: f(x, w), x)[1](g)[0])
      else:
        fns[n] = jax.jit(lambda x, w, g, f=f: jax.vjp(lambda w: f(x, w), w)[1](g)[0])
      jax.block_until_ready(fns[n](x, w, g))
    flops = 2 * float(np.prod(y_shape)) * batch * np.prod(kshape[:3])
    best = {n: float("inf") for n in names}
    for _ in range(repeats):
      for n in names:
        t = time.perf_counter()
        jax.block_until_ready(fns[n](x, w, g))
        best[n] = min(best[n], time.perf_counter() - t)
    out[mode] = {n: flops / best[n] / 1e9 for n in names}
    out[mode]["fastest"] = max(names, key=lambda n: out[mode][n])
  return out


def main(argv):
  del argv
  shapes = []
  for name, shape, kw in SPECS:
    for s in conv_shapes(jal.make_net(name, shape, 10, **kw), shape):
      if s not in shapes:
        shapes.append(s)
  res = {"load_before": timing.loadavg(), "shapes": []}
  for s in shapes:
    r = time_shape(s, _INFER.value, _TRAIN.value, _REPEATS.value)
    rule = conv.lowerings((_TRAIN.value, *s[0]), s[1], s[2])
    r.update(shape=str(s), rule=list(rule))
    res["shapes"].append(r)
    timing.log(f"{s[0]} k{s[1]} s{s[2]}: " + " | ".join(
        f"{mode} " + " ".join(f"{n} {r[mode][n]:.0f}" for n in FNS if n in r[mode])
        for mode in PASSES) + " GFLOP/s | fastest " + "/".join(r[m]["fastest"] for m in PASSES)
        + " rule " + "/".join(rule))
  res["load_after"] = timing.loadavg()
  text = json.dumps(res, indent=1)
  print(text)
  if _OUT.value:
    pathlib.Path(_OUT.value).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(_OUT.value).write_text(text + "\n")


if __name__ == "__main__":
  app.run(main)
