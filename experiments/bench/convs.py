r"""Times every convolution lowering on every convolution shape of jal's models: the
measurement behind ``jal.models.conv.lowering``'s rules.

  python -m experiments.bench.convs --out=results/resnet_speed/convs.json

For each distinct shape (``jal.models.layers.conv_shapes`` of LeNet-5 and the three ResNet-18
stems), XLA's convolution, shifted slices + matmul and (maps of ≤ 16 positions) the dense
matmul are timed forward at batch ``--infer_batch`` and forward + backward at
``--train_batch``, interleaved (one call of each in turn, best of ``--repeats``), and the
fastest is printed next to the lowering the rule picks.
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


FNS = {"xla": _xla, "slices": conv.conv_slices, "dense": conv.conv_dense}


def time_shape(spec, infer_batch: int, train_batch: int, repeats: int) -> dict:
  """GFLOP/s of each lowering on one shape, forward and forward + backward."""
  in_shape, kshape, strides, padding = spec
  names = [n for n in FNS if n != "dense" or in_shape[0] * in_shape[1] <= 16]
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.standard_normal(kshape, dtype=np.float32) * 0.01)
  out = {}
  for mode, batch in (("forward", infer_batch), ("train", train_batch)):
    x = jnp.asarray(rng.standard_normal((batch, *in_shape), dtype=np.float32))
    fns = {}
    for n in names:
      f = lambda x, w, f=FNS[n]: f(x, w, strides, padding)
      if mode == "train":
        fns[n] = jax.jit(jax.grad(lambda x, w, f=f: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
      else:
        fns[n] = jax.jit(f)
      jax.block_until_ready(fns[n](x, w))
    flops = 2 * float(np.prod(_xla(x[:1], w, strides, padding).shape)) * batch * np.prod(
        kshape[:3]) * (3 if mode == "train" else 1)
    best = {n: float("inf") for n in names}
    for _ in range(repeats):
      for n in names:
        t = time.perf_counter()
        jax.block_until_ready(fns[n](x, w))
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
    r.update(shape=str(s), rule=conv.lowering((_TRAIN.value, *s[0]), s[1], s[2]))
    res["shapes"].append(r)
    fwd, trn = r["forward"], r["train"]
    timing.log(f"{s[0]} k{s[1]} s{s[2]}: fwd " +
               " ".join(f"{n} {fwd[n]:.0f}" for n in FNS if n in fwd) +
               " | f+b " + " ".join(f"{n} {trn[n]:.0f}" for n in FNS if n in trn) +
               f" GFLOP/s | fastest {fwd['fastest']}/{trn['fastest']} rule {r['rule']}")
  res["load_after"] = timing.loadavg()
  text = json.dumps(res, indent=1)
  print(text)
  if _OUT.value:
    pathlib.Path(_OUT.value).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(_OUT.value).write_text(text + "\n")


if __name__ == "__main__":
  app.run(main)
