"""Seed noise of the one-round protocol: RAMBO / DULO / null on digits for several seeds.

A small but meaningful ``rambo_mnist``-like setting (k = 60, B = 60, b = 10, τ₁ = 4, 30
offline pairs, M = 10b, f trained until 99 % train accuracy or 100 epochs). It only calls
``jal.rambo.run_one_round``, whose signature did not change, so the same file measures an
older checkout: run it from a directory holding that checkout's ``jal/`` (``-m`` puts the
working directory first on ``sys.path``), with this repository on ``PYTHONPATH``.

Usage::

  python -m tests.golden.one_round_seeds --out new.json --seeds 0 1 2 3 4   # repository root
  git archive 24b1f8f jal | tar -x -C /tmp/jal_old
  cd /tmp/jal_old && PYTHONPATH=$REPO python -m tests.golden.one_round_seeds --out old.json
  python -m tests.golden.one_round_seeds --compare old.json new.json
"""

import argparse
import json
import pathlib

import numpy as np

__all__ = ["CONFIG", "run", "compare"]

CONFIG = dict(k=60, budget=60, k1=20, b=10, n_aug=10, offline_pairs=30, offline_steps=100,
              m_factor=10, fit_chunk=30, dulo_candidates=100, ot_debiased=True)
UTILITY = dict(outer_steps=5, inner_steps=20, cg_steps=5)
STRATEGIES = ("rambo", "dulo", "null")


def run(seeds, strategies=STRATEGIES, out=None) -> dict:
  """``{strategy: {seed: {"val_accuracy", "test_accuracy", "seconds"}}}``, saved to ``out``."""
  import jax

  import jal
  from jal.rambo import BilevelConfig, RamboConfig, run_one_round
  print("jal from", jal.__file__, flush=True)
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(32,))
  tc = jal.TrainConfig(epochs=100, batch_size=64, stop_train_acc=0.99)
  cfg = RamboConfig(**CONFIG, utility=BilevelConfig(**UTILITY))
  path = pathlib.Path(out) if out else None
  res = json.loads(path.read_text()) if path and path.exists() else {}
  for s in strategies:
    for seed in seeds:
      if str(seed) in res.get(s, {}):
        continue
      r = run_one_round(jax.random.key(seed), data, net, tc, cfg, s)
      res.setdefault(s, {})[str(seed)] = {k: r[k] for k in ("val_accuracy", "test_accuracy",
                                                             "seconds")}
      print(s, seed, res[s][str(seed)], flush=True)
      if path:
        path.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
  return res


def _mse(a) -> str:
  a = np.asarray(a, float)
  return f"{a.mean():.4f} ± {a.std(ddof=1) / np.sqrt(a.size):.4f}"


def compare(old: dict, new: dict) -> str:
  """Markdown table: mean ± standard error of old, new and the paired difference new − old."""
  lines = ["| strategy | metric | seeds | old | new | new − old (paired) |",
           "|---|---|---|---|---|---|"]
  for s in sorted(set(old) & set(new)):
    seeds = sorted(set(old[s]) & set(new[s]), key=int)
    for m in ("val_accuracy", "test_accuracy"):
      o = [old[s][k][m] for k in seeds]
      n = [new[s][k][m] for k in seeds]
      lines.append(f"| {s} | {m} | {len(seeds)} | {_mse(o)} | {_mse(n)} | "
                   f"{_mse(np.subtract(n, o))} |")
  return "\n".join(lines)


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--out")
  p.add_argument("--seeds", type=int, nargs="+", default=list(range(5)))
  p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
  p.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
  a = p.parse_args()
  if a.compare:
    print(compare(*(json.loads(pathlib.Path(f).read_text()) for f in a.compare)))
  else:
    run(a.seeds, a.strategies, a.out)


if __name__ == "__main__":
  main()
