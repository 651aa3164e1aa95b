"""Issue 16, point 3: does the CPU's OT concession change what BRAL-T buys?

  python results/bralt/fmnist_resnet/ot_check/compare_picks.py [--data_dir=../shared/data]

Both BRAL-T rows of the protocol ran with the reduced protocol's Sinkhorn settings
(``max_points=256 rel_epsilon=0.01 ot_momentum=1.5``) instead of the paper's (1,000 points,
ε = 1e-3 of the mean cost, plain Sinkhorn). Here round 0 of a seed was run twice on the same
VM and core, once with each setting (``run.sh``), so both selections start from the same
model; this script compares the two batches of 250: how many points they share, their class
mix, and their typicality in ``pick_quality.py``'s model-free space. It writes ``picks.md``.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import pick_quality  # noqa: E402  (the script beside this folder)

from jal.data.idx import load_idx_arrays  # noqa: E402

SEEDS = (0, 1, 2)
RUNS = {"paper": "paper OT (1,000 points, ε 1e-3)", "conc": "CPU OT (256 points, ε 1e-2, ω 1.5)"}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default=None)
  args = parser.parse_args()
  x, y, _, _ = load_idx_arrays("fashion_mnist", data_dir=args.data_dir)
  agreement = pick_quality.neighbour_agreement(pick_quality.pca_features(x), y)
  lines = ["| seed | OT settings | round-0 test acc. | typicality | within class | share of "
           "classes 0, 2, 4, 6 | class counts |", "|---|---|---|---|---|---|---|"]
  shared = []
  for seed in SEEDS:
    if not all((HERE / f"{k}_seed{seed}.json").exists() for k in RUNS):
      continue
    rounds = {k: json.loads((HERE / f"{k}_seed{seed}.json").read_text())["rounds"][0]
              for k in RUNS}
    picks = {k: np.asarray(r["queried"]) for k, r in rounds.items()}
    for k, label in RUNS.items():
      p = picks[k]
      lines.append(
        f"| {seed} | {label} | {rounds[k]['test_accuracy']:.4f} | {agreement[p].mean():.3f} | "
        f"{pick_quality.within_class(agreement, y, p).mean():+.3f} | "
        f"{np.isin(y[p], [0, 2, 4, 6]).mean():.2f} | {np.bincount(y[p], minlength=10).tolist()} |")
    shared.append(f"seed {seed}: {len(np.intersect1d(picks['paper'], picks['conc']))} "
                  f"of {len(picks['paper'])}")
  lines += ["", f"Points both batches bought: {'; '.join(shared)}. "
            "Made by `ot_check/compare_picks.py`.", ""]
  (HERE / "picks.md").write_text("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
