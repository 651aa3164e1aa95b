"""The ``scores`` section: EL2N and GraNd throughput of LeNet-5 and ResNet-18."""

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jal
from experiments.bench import timing

__all__ = ["n_params", "score_throughput", "scores_section"]


def n_params(variables: jal.Variables) -> int:
  """Number of trainable parameters."""
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables.params)))


def score_throughput(net: jal.Net, variables: jal.Variables, score: str, n: int,
                     chunk_size: int, *, input_shape: Sequence[int], warmup: int = 1,
                     repeats: int = 1, seed: int = 0) -> dict:
  """Examples/s of ``jal.scores.el2n`` or ``jal.scores.grand`` over ``n`` random inputs.

  The call is compiled ahead of time (``compile_seconds``), then run ``warmup`` times untimed
  and ``repeats`` times timed (best run reported).
  """
  fns = {"el2n": jal.scores.el2n, "grand": jal.scores.grand}
  if score not in fns:
    raise ValueError(f"score must be one of {sorted(fns)}, got {score!r}")
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((n, *input_shape), dtype=np.float32))
  y = jnp.asarray(rng.integers(0, net.num_classes, n), jnp.int32)
  fn = fns[score]
  # The labels are closed over, not traced: jal.scores checks their range on the host.
  t = timing.time_jit(lambda v, xx: fn(net, v, xx, y, chunk_size), variables, x,
                      warmup=warmup, repeats=repeats)
  return {"n": int(n), "chunk_size": int(min(chunk_size, n)),
          "examples_per_second": n / t["seconds"], **t}


def scores_section(models: Sequence[dict], *, warmup: int = 1, repeats: int = 1,
                   seed: int = 0) -> dict:
  """EL2N and GraNd throughput for each model spec.

  Args:
    models: dicts with ``name`` (key in the output), ``model`` (``jal.make_net`` name),
      ``input_shape``, ``kwargs`` (model options), ``el2n_n``, ``el2n_chunk``, ``grand_n``,
      ``grand_chunk``; an ``*_n`` of 0 skips that score (both 0: the model).
    warmup: untimed runs after compiling.
    repeats: timed runs.
    seed: seed of the model and the inputs.

  Returns:
    ``{name: {"model", "input_shape", "model_kwargs", "params", "el2n": {...},
    "grand": {...}}}`` plus a ``note``.
  """
  out = {"note": "random-init weights and N(0, 1) inputs (throughput does not depend on "
                 "them); BatchNorm in eval mode; best of the timed runs after AOT compile"}
  for spec in models:
    if int(spec.get("el2n_n", 0)) > 0 or int(spec.get("grand_n", 0)) > 0:
      out[spec["name"]] = timing.guarded(f"scores/{spec['name']}", _score_model, spec,
                                   warmup=warmup, repeats=repeats, seed=seed)
  return out


def _score_model(spec: dict, *, warmup: int, repeats: int, seed: int) -> dict:
  shape = tuple(int(s) for s in spec["input_shape"])
  kwargs = dict(spec.get("kwargs") or {})
  net = jal.make_net(spec["model"], shape, 10, **kwargs)
  t0 = time.perf_counter()
  variables = jax.block_until_ready(net.init(jax.random.key(seed)))
  res = {"model": spec["model"], "input_shape": list(shape), "model_kwargs": kwargs,
         "params": n_params(variables), "eager_init_seconds": time.perf_counter() - t0}
  if spec["model"] == "resnet18" and shape[-1] == 1:
    res["grayscale_adapter"] = "1x1 conv 1->3 before the stem"
  for score in ("el2n", "grand"):
    n = int(spec.get(f"{score}_n", 0))
    if n <= 0:
      continue
    timing.log(f"scores: {spec['name']} {score} n={n} chunk={spec[f'{score}_chunk']}")
    res[score] = timing.guarded(f"scores/{spec['name']}/{score}", score_throughput, net, variables,
                          score, n, int(spec[f"{score}_chunk"]), input_shape=shape,
                          warmup=warmup, repeats=repeats, seed=seed)
    if "examples_per_second" in res[score]:
      timing.log(f"scores: {spec['name']} {score}: {res[score]['examples_per_second']:.1f} ex/s "
           f"(compile {res[score]['compile_seconds']:.1f}s)")
  return res
