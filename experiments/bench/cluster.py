"""Single-device timings of jal's clustering and top-k, for before/after comparisons.

It times ``jal`` (and, with ``--baseline``, another checkout's ``jal`` in the same process):

  python -m experiments.bench.cluster --out=new.json
  python -m experiments.bench.cluster --baseline=/path/to/old/checkout --out=cmp.json

Inputs are synthetic LeNet-sized pool outputs (``n = 59,000`` rows, ``d = 84`` embeddings,
``K = 10`` logits). Each case is called once to compile (not timed), then timed ``--repeats``
times with ``jax.block_until_ready``; min and median seconds are reported. Two groups:

* ``cluster.*``: the library functions called directly, as they were public before and after
  the merge (k-means++ plain and factored, Lloyd k-means, greedy k-center, top-k of unlabeled).
* ``pick.*``: the built-in strategies' ``pick`` on a ``Context`` with ``mesh=None`` (what the
  loop times as *select*), so a change in how strategies call the library shows up too.

With ``--baseline=CHECKOUT`` the same cases of another checkout (its ``jal`` package, imported
from a renamed copy as ``jal_base``) are timed in the same process, alternating baseline and
current repeat by repeat, so that load from other processes hits both alike; the JSON then holds
both and the ratio current / baseline of the min and median.

Prints one JSON object (and writes it to ``--out`` when given).
"""

import argparse
import importlib
import json
import pathlib
import re
import statistics
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench import timing


def _stats(ts):
  return {"min_s": min(ts), "median_s": statistics.median(ts), "repeats": len(ts)}


def _time(fns, repeats):
  """Times each of ``fns`` ``repeats`` times, alternating between them (compile excluded)."""
  for fn in fns:
    jax.block_until_ready(fn())  # compile + warm up, not timed
  ts = [[] for _ in fns]
  for _ in range(repeats):
    for fn, t in zip(fns, ts):
      t.append(timing.seconds(fn))
  return [_stats(t) for t in ts]


def _import_renamed(checkout: str, name: str = "jal_base"):
  """Imports ``checkout/jal`` as package ``name`` (a copy with its imports renamed)."""
  root = pathlib.Path(tempfile.mkdtemp(prefix="bench_cluster_"))
  for src in (pathlib.Path(checkout) / "jal").rglob("*.py"):
    dst = root / name / src.relative_to(pathlib.Path(checkout) / "jal")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(re.sub(r"\bjal\b", name, src.read_text()))
  sys.path.insert(0, str(root))
  return importlib.import_module(name)


def _cases(jal, inputs, args):
  """``{name: fn}`` of the timed calls through package ``jal``."""
  cluster = jal.cluster
  # Before the merge top-k lived in jal.strategies; after it, in jal.cluster.
  top_k_unlabeled = getattr(cluster, "top_k_unlabeled", None) or jal.strategies.top_k_unlabeled
  key, emb, logits, labeled, unl, fac, scores = inputs
  ctx = jal.Context(None, None, None, None, labeled, args.classes, 1024, None)
  cases = {}
  for k in (int(s) for s in args.ks.split(",")):
    cases[f"cluster.kmeans_plusplus.k{k}"] = (
        lambda k=k: cluster.kmeans_plusplus(key, emb, k, unl))
    cases[f"cluster.kmeans_plusplus_factored.k{k}"] = (
        lambda k=k: cluster.kmeans_plusplus_factored(key, fac, emb, k, unl))
    cases[f"cluster.kmeans.k{k}"] = (
        lambda k=k: cluster.kmeans(key, emb, k, unl, n_iter=args.lloyd_iters).assignment)
    cases[f"cluster.kcenter_greedy.b{k}"] = (
        lambda k=k: cluster.kcenter_greedy(emb, k, labeled))
    cases[f"cluster.top_k_unlabeled.b{k}"] = (
        lambda k=k: top_k_unlabeled(scores, labeled, k))
    for name, aux in (("random", None), ("margin", logits), ("coreset", (logits, emb)),
                      ("kmeans", (logits, emb)), ("badge", (logits, emb))):
      strat = jal.get_strategy(name)
      cases[f"pick.{name}.b{k}"] = (
          lambda strat=strat, aux=aux, k=k: strat.pick(key, ctx, aux, k))
  return cases


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n", type=int, default=59_000)
  p.add_argument("--dim", type=int, default=84)
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--ks", type=str, default="100,250", help="k / budget values")
  p.add_argument("--labeled", type=int, default=500)
  p.add_argument("--lloyd_iters", type=int, default=20)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--only", type=str, default="", help="comma-separated case-name prefixes")
  p.add_argument("--baseline", type=str, default="", help="another checkout to time alongside")
  p.add_argument("--out", type=str, default="")
  args = p.parse_args(argv)

  import jal
  base = _import_renamed(args.baseline) if args.baseline else None

  n, d = args.n, args.dim
  emb = jax.random.normal(jax.random.key(10), (n, d))
  logits = jax.random.normal(jax.random.key(11), (n, args.classes)) * 3.0
  lab_np = np.zeros(n, bool)
  lab_np[np.random.default_rng(0).choice(n, args.labeled, replace=False)] = True
  labeled = jnp.asarray(lab_np)
  unl = ~labeled
  prob = jax.nn.softmax(logits, -1)
  fac = prob - jax.nn.one_hot(jnp.argmax(prob, -1), args.classes, dtype=prob.dtype)
  scores = jal.scores.margin_score(prob)
  key = jax.random.key(0)
  inputs = (key, emb, logits, labeled, unl, fac, scores)
  jax.block_until_ready(inputs[1:])

  cases = _cases(jal, inputs, args)
  base_cases = _cases(base, inputs, args) if base else {}
  only = tuple(s for s in args.only.split(",") if s)
  out = {"jal": jal.__file__, "baseline": args.baseline or None, "jax": jax.__version__,
         "backend": jax.default_backend(), "n": n, "dim": d, "labeled": args.labeled,
         "lloyd_iters": args.lloyd_iters, "results": {}}
  for name, fn in cases.items():
    if only and not name.startswith(only):
      continue
    if base:
      b, c = _time([base_cases[name], fn], args.repeats)
      r = {"baseline": b, "current": c, "ratio_min": c["min_s"] / b["min_s"],
           "ratio_median": c["median_s"] / b["median_s"]}
    else:
      r = _time([fn], args.repeats)[0]
    out["results"][name] = r
    print(name, r, file=sys.stderr, flush=True)
  text = json.dumps(out, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
