"""Issue 16, point 3: the numbers of the verdict, from this table's ``summary.json``.

  python results/bralt/fmnist_resnet/verdict.py   # after make_table.py; writes verdict.md

For each comparison the issue asks for, paired over the seeds both rows ran: the per-seed
differences of AUBC and of F-acc, their mean ± standard error, the 95 % Student-t interval,
how many seeds the first row won, and the paper's difference (BRAL-T Table 1, Fashion-MNIST,
over all 40 rounds; our rows cover the first 10, Q = 2,500, so it is context, not a target).
Then, for every comparison but those with Margin, the paired test-accuracy difference at each
labeled count (mean ± SE over the shared seeds), and its mean over the last five counts
(averaged per seed, then mean ± SE): whether a gap is closing by round 10.
"""

import json
import pathlib

import numpy as np

from jal import metrics

HERE = pathlib.Path(__file__).resolve().parent
BRALT, FILL = "bral_t (SPEC)", "bral_t fill=score"
RANDOM, CONTROL = "random", "random + SuperLoss (control)"
LP, WAAL, MARGIN = "lossprediction", "waal (cap 3,000)", "margin"
# Table 1, Fashion-MNIST (AUBC, F-acc): BRAL-T .863/.894, Random .844/.874, LossPrediction
# .859/.888, WAAL .861/.891.
PAPER = {RANDOM: (0.844, 0.874), LP: (0.859, 0.888), WAAL: (0.861, 0.891)}
PAPER_BRALT = (0.863, 0.894)
COMPARISONS = [  # (row, column, what the difference measures)
    (BRALT, RANDOM, "Table 1's claim"), (BRALT, LP, "Table 1's claim"),
    (BRALT, WAAL, "Table 1's claim"), (BRALT, MARGIN, "the strongest classic baseline"),
    (FILL, RANDOM, "Table 1's claim, best reading"), (FILL, LP, "Table 1's claim, best reading"),
    (FILL, WAAL, "Table 1's claim, best reading"), (FILL, MARGIN, "best reading vs Margin"),
    (BRALT, CONTROL, "BRAL-T's picks (same training)"),
    (FILL, CONTROL, "best reading's picks (same training)"),
    (CONTROL, RANDOM, "SuperLoss training alone"),
]


def per_seed(summary: dict, name: str) -> dict[int, tuple[float, float]]:
  """``{seed: (AUBC, F-acc)}`` of one row."""
  s = summary[name]
  return {k: (metrics.aubc_from_counts(s["n_labeled"], a), float(a[-1]))
          for k, a in zip(s["seeds"], s["acc"])}


def compare(summary: dict, a: str, b: str, what: str) -> list[str]:
  """Two table lines (AUBC, F-acc) for ``a − b``, or none when they share < 2 seeds."""
  if a not in summary or b not in summary:
    return []
  va, vb = per_seed(summary, a), per_seed(summary, b)
  seeds = sorted(set(va) & set(vb))
  if len(seeds) < 2:
    return []
  lines = []
  for i, stat in enumerate(("AUBC", "F-acc")):
    d = np.array([va[k][i] - vb[k][i] for k in seeds])
    mean, se = metrics.mean_se(d)
    half = metrics.t_critical(0.95, len(d) - 1) * se
    paper = "–"
    if a in (BRALT, FILL) and b in PAPER:
      paper = f"{PAPER_BRALT[i] - PAPER[b][i]:+.3f}"
    lines.append(f"| {a} − {b} | {stat} | {' / '.join(f'{x:+.4f}' for x in d)} | "
                 f"{mean:+.4f} ± {se:.4f} | [{mean - half:+.4f}, {mean + half:+.4f}] | "
                 f"{int((d > 0).sum())}/{len(d)} | {paper} | {what} |")
  return lines


LATE = 5   # the last rounds averaged per seed in the per-round table's last column


def per_round(summary: dict, a: str, b: str) -> str | None:
  """One table line: ``a − b`` test accuracy at each labeled count, paired over shared seeds."""
  if a not in summary or b not in summary:
    return None
  sa, sb = summary[a], summary[b]
  seeds = sorted(set(sa["seeds"]) & set(sb["seeds"]))
  if len(seeds) < 2:
    return None
  acc_a = np.array([sa["acc"][sa["seeds"].index(k)] for k in seeds])
  acc_b = np.array([sb["acc"][sb["seeds"].index(k)] for k in seeds])
  cells = []
  for j in range(acc_a.shape[1]):
    mean, se = metrics.mean_se(acc_a[:, j] - acc_b[:, j])
    cells.append(f"{mean:+.3f} ± {se:.3f}")
  mean, se = metrics.mean_se((acc_a[:, -LATE:] - acc_b[:, -LATE:]).mean(axis=1))
  cells.append(f"{mean:+.4f} ± {se:.4f}")
  return f"| {a} − {b} | {len(seeds)} | " + " | ".join(cells) + " |"


def main():
  summary = json.loads((HERE / "summary.json").read_text())
  lines = ["| comparison (row − column) | statistic | per seed | mean ± SE | 95% t interval | "
           "seeds won | paper (40 rounds) | what it measures |", "|---" * 8 + "|"]
  for a, b, what in COMPARISONS:
    lines += compare(summary, a, b, what)
  counts = summary[RANDOM]["n_labeled"]
  lines += ["", "Test accuracy, row − column, at each labeled count (mean ± SE over the shared "
            f"seeds; last column: the last {LATE} counts' mean, per seed, then mean ± SE):", "",
            "| comparison | seeds | " + " | ".join(str(n) for n in counts) + f" | last {LATE} |",
            "|---" * (len(counts) + 3) + "|"]
  for a, b, _ in COMPARISONS:
    if b != MARGIN:
      line = per_round(summary, a, b)
      if line:
        lines.append(line)
  text = "\n".join(lines) + "\n"
  (HERE / "verdict.md").write_text(text)
  print(text)


if __name__ == "__main__":
  main()
