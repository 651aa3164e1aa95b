r"""ResNet-18 (and LeNet-5) speed of jal against the same network in PyTorch, in one run.

  python -m experiments.bench.resnet --out=results/resnet_speed/run.json
  python -m experiments.bench.resnet --nets=imagenet28 --sections=grand --repeats=5

For each network and section, jal and then PyTorch (when ``torch`` is importable; an optional
peer, never needed by jal or its tests) are timed on the same shapes, one after the other, and
the ratio jal/PyTorch is printed (> 1: jal faster). Sections:

* ``inference``: eval-mode forward passes over ``--n_infer`` images in chunks of 1,024
  (``jal.predict``; PyTorch under ``no_grad``);
* ``train``: seconds per Adam (1e-3) step at batch 128 — jal as ``jal.fit`` over
  ``--train_steps`` steps (the model's init included, so slightly pessimistic for jal);
* ``grand``: GraNd examples/s — jal's layer-wise ``jal.scores.grand`` against PyTorch's
  per-example backward loop.

Best of ``--repeats`` runs after one untimed run (compiles excluded), with the median too.
Nets: ``imagenet28`` (DeepAL+'s MNIST net: 1×1 conv 1→3 + ImageNet stem, 28×28×1),
``cifar32`` (3×3/1 stem, no max-pool, 32×32×3), ``cifar_pool32`` (DeepAL+'s CIFAR net: 3×3/1
stem with the 3×3/2 max-pool), ``lenet28`` (inference and train only).
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import jal
from experiments.bench import timing

NETS = {
    "imagenet28": ("resnet18", (28, 28, 1), {"stem": "imagenet"}),
    "cifar32": ("resnet18", (32, 32, 3), {"stem": "cifar"}),
    "cifar_pool32": ("resnet18", (32, 32, 3), {"stem": "cifar_pool"}),
    "lenet28": ("lenet", (28, 28, 1), {}),
}
SECTIONS = ("inference", "train", "grand")

_NETS = flags.DEFINE_list("nets", ["imagenet28", "cifar32", "cifar_pool32", "lenet28"],
                          f"networks, from {sorted(NETS)}")
_SECTIONS = flags.DEFINE_list("sections", list(SECTIONS), f"sections, from {SECTIONS}")
_N_INFER = flags.DEFINE_integer("n_infer", 4096, "images per inference run")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 10, "Adam steps per training run")
_N_GRAND = flags.DEFINE_integer("n_grand", 1024, "examples per jal GraNd run")
_N_GRAND_TORCH = flags.DEFINE_integer("n_grand_torch", 64, "examples per PyTorch GraNd run")
_GRAND_CHUNK = flags.DEFINE_integer("grand_chunk", 128, "jal GraNd chunk size")
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed runs (best and median reported)")
_TORCH = flags.DEFINE_bool("torch", True, "time PyTorch too when it is importable")
_OUT = flags.DEFINE_string("out", None, "write the JSON here too")


def _best(fn, repeats: int) -> tuple[float, float]:
  jax.block_until_ready(fn())
  runs = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    runs.append(time.perf_counter() - t)
  return min(runs), float(np.median(runs))


def jal_section(section: str, net: jal.Net, shape, repeats: int) -> dict:
  """Times one section of jal on random inputs (see the module docstring)."""
  rng = np.random.default_rng(0)
  variables = net.init(jax.random.key(0))
  if section == "inference":
    n = _N_INFER.value
    x = jnp.asarray(rng.standard_normal((n, *shape), dtype=np.float32))
    best, med = _best(lambda: jal.predict(net, variables, x, 1024)[0], repeats)
    return {"examples_per_second": n / best, "median_examples_per_second": n / med}
  if section == "train":
    steps, batch = _TRAIN_STEPS.value, 128
    n = steps * batch
    x = jnp.asarray(rng.standard_normal((n, *shape), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
    mask = jnp.ones((n,), bool)
    config = jal.TrainConfig(epochs=1, batch_size=batch)
    best, med = _best(lambda: jal.fit(jax.random.key(1), net, config, x, y, mask)
                      .variables, repeats)
    return {"seconds_per_step": best / steps, "median_seconds_per_step": med / steps}
  n = _N_GRAND.value
  x = jnp.asarray(rng.standard_normal((n, *shape), dtype=np.float32))
  y = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
  best, med = _best(lambda: jal.scores.grand(net, variables, x, y, _GRAND_CHUNK.value),
                    repeats)
  return {"examples_per_second": n / best, "median_examples_per_second": n / med,
          "chunk_size": _GRAND_CHUNK.value}


def torch_section(section: str, name: str, repeats: int) -> dict | None:
  """The same section in PyTorch, or ``None`` without torch."""
  try:
    import torch  # noqa: F401  (optional peer)

    from experiments.bench import torch_peer
  except ImportError:
    return None
  model_name, shape, kw = NETS[name]
  if model_name != "resnet18":
    return None
  model = torch_peer.make_resnet18(shape, 10, kw["stem"])
  if section == "inference":
    return torch_peer.inference(model, shape, _N_INFER.value, 1024, repeats)
  if section == "train":
    return torch_peer.train_steps(model, shape, 128, _TRAIN_STEPS.value, repeats)
  return torch_peer.grand(model, shape, _N_GRAND_TORCH.value, repeats)


def _ratio(section, mine, peer):
  if not peer:
    return None
  if section == "train":
    return peer["seconds_per_step"] / mine["seconds_per_step"]
  return mine["examples_per_second"] / peer["examples_per_second"]


def main(argv):
  del argv
  for n in _NETS.value:
    if n not in NETS:
      raise app.UsageError(f"--nets: unknown {n!r}; choose from {sorted(NETS)}")
  for s in _SECTIONS.value:
    if s not in SECTIONS:
      raise app.UsageError(f"--sections: unknown {s!r}; choose from {SECTIONS}")
  out = {"backend": jax.default_backend(), "jax": jax.__version__, "load_before":
         timing.loadavg(), "results": {}}
  if _TORCH.value:
    try:
      import torch
      out["torch"] = torch.__version__
      out["torch_threads"] = torch.get_num_threads()
    except ImportError:
      out["torch"] = None
  for name in _NETS.value:
    model, shape, kw = NETS[name]
    net = jal.make_net(model, shape, 10, **kw)
    for section in _SECTIONS.value:
      if section == "grand" and model != "resnet18":
        continue
      timing.log(f"{name} {section}: jal")
      mine = jal_section(section, net, shape, _REPEATS.value)
      peer = None
      if _TORCH.value:
        timing.log(f"{name} {section}: torch")
        peer = torch_section(section, name, _REPEATS.value)
      ratio = _ratio(section, mine, peer)
      out["results"][f"{name}/{section}"] = {"jal": mine, "torch": peer,
                                              "jal_speedup_over_torch": ratio}
      timing.log(f"{name} {section}: jal {mine} torch {peer} ratio "
                 f"{'-' if ratio is None else f'{ratio:.2f}'}")
  out["load_after"] = timing.loadavg()
  text = json.dumps(out, indent=1)
  print(text)
  if _OUT.value:
    path = pathlib.Path(_OUT.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


if __name__ == "__main__":
  app.run(main)
