"""Issue 16, point 1: BRAL-T's selection readings on `bralt_fmnist_reduced`, one table.

  python results/bralt/readings/make_table.py [--runs=/work/runs]

Each reading ran as ``compare --isolate --config=bralt_fmnist_reduced --strategies=bral_t
--seeds=k --config.strategy.kwargs.<kw> --workdir=<runs>/readings/<name>`` (BUILD_NOTES,
session 19). This script copies every finished ``history.json`` here
(``<name>/seed<k>.json``, so the rows survive the scratch workdirs), joins them with Random,
Margin and the pseudo-score ablation of ``results/bralt/fmnist_reduced/summary.json`` (same
protocol and seeds, session-3 code) and writes ``table.md``, ``penalty.md`` (with the paired
AUBC differences), ``summary.json``, ``curve.png`` and ``diagnose.md`` (the oracle agreement
of ``bralt_diagnose`` per reading, when present).
"""

import argparse
import json
import pathlib
import shutil

from experiments import tables

HERE = pathlib.Path(__file__).resolve().parent
READINGS = {  # name: (row label, kwargs)
    "spec": ("bral_t (SPEC: A_c 5, quota, uniform)", ""),
    "fill_score": ("bral_t fill=score", "fill=score"),
    "global": ("bral_t global ranking", "global_ranking=True"),
    "ac50": ("bral_t A_c=50", "actions=50"),
    "ac100": ("bral_t A_c=100", "actions=100"),
}


def _diagnose(runs: pathlib.Path) -> str:
  lines = ["| reading | |L| | Spearman (action reward vs oracle) | top action's oracle pct | "
           "batch oracle pct: BRAL-T / Random / Margin / GradNd-GT | overlap with GradNd-GT |",
           "|---|---|---|---|---|---|"]
  for name, (label, _) in READINGS.items():
    src, dst = runs / "diagnose" / f"{name}.json", HERE / f"diagnose_{name}.json"
    if src.exists():
      shutil.copyfile(src, dst)
    if not dst.exists():
      continue
    for r in json.loads(dst.read_text()):
      b = r["batch_oracle"]
      pct = " / ".join(f"{b[k]['mean_percentile']:.1f}"
                       for k in ("bral_t", "random", "margin", "gradnd_gt"))
      a = r["action_agreement"]
      lines.append(f"| {label} | {r['n_labeled']} | {a['spearman']:+.2f} | "
                   f"{a['top_action_oracle_percentile']:.0f} | {pct} | "
                   f"{r['overlap_with_gradnd_gt']:.3f} |")
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--runs", default="/work/runs")
  runs = pathlib.Path(parser.parse_args().runs)
  base = json.loads((HERE.parent / "fmnist_reduced" / "summary.json").read_text())
  summary = {n: base[n] for n in ("random", "margin", "pseudo_score")}
  summary["bral_t (session 3)"] = base["bral_t"]
  rows = {name: (runs / "readings" / name, "bral_t") for name in READINGS}
  kept = tables.store_finished(rows, [0, 1, 2], HERE)
  summary.update(tables.aggregate({READINGS[k][0]: v for k, v in kept.items()}))
  table = tables.write_report(HERE, summary, title="bralt_fmnist_reduced: BRAL-T's readings")
  (HERE / "diagnose.md").write_text(_diagnose(runs))
  print(table)
  print((HERE / "penalty.md").read_text())
  print((HERE / "diagnose.md").read_text())


if __name__ == "__main__":
  main()
