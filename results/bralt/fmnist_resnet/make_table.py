"""Issue 16, point 2: BRAL-T's Fashion-MNIST protocol with ResNet-18, first 10 rounds.

  python results/bralt/fmnist_resnet/make_table.py [--runs=results/bralt/fmnist_resnet/runs]

The runs are made by ``run_queue.sh`` (one worker per core; BUILD_NOTES, sessions 19–20):
``compare --isolate --config=bralt_table5_fashion_mnist --config.loop.rounds=10`` per row and
seed in ``<runs>/<row>/<strategy>/seed<k>``. This script copies every finished
``history.json`` here (``<row>/seed<k>.json``, so finished trials outlive the scratch runs),
writes ``table.md``, ``penalty.md`` (with the paired AUBC differences), ``summary.json`` and
``curve.png`` from them, and prints how far each unfinished trial has got.
"""

import argparse
import json
import pathlib

from experiments import tables

HERE = pathlib.Path(__file__).resolve().parent
ROWS = {  # row directory: (strategy, table label)
    "random": ("random", "random"),
    "margin": ("margin", "margin"),
    "bral_t": ("bral_t", "bral_t (SPEC)"),
    "bral_t_fill": ("bral_t", "bral_t fill=score"),
    "lossprediction": ("lossprediction", "lossprediction"),
    "waal": ("waal", "waal (cap 3,000)"),
    "random_superloss": ("random", "random + SuperLoss (control)"),
}
SEEDS = [0, 1, 2]


def _progress(runs: pathlib.Path) -> list[str]:
  """One line per started, unfinished trial: its rounds done."""
  lines = []
  for row, (strategy, _) in ROWS.items():
    for seed in SEEDS:
      path = runs / row / strategy / f"seed{seed}" / "history.json"
      if path.exists():
        h = json.loads(path.read_text())
        if not tables.finished(h):
          lines.append(f"{row} seed {seed}: {len(h['rounds'])} rounds done")
  return lines


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--runs", default=str(HERE / "runs"))
  runs = pathlib.Path(parser.parse_args().runs)
  kept = tables.store_finished({row: (runs / row, s) for row, (s, _) in ROWS.items()},
                               SEEDS, HERE)
  if kept:
    summary = tables.aggregate({ROWS[row][1]: h for row, h in kept.items()})
    print(tables.write_report(HERE, summary,
                              title="bralt_table5_fashion_mnist, 10 rounds (ResNet-18)"))
  print("\n".join(_progress(runs)) or "no unfinished trial")


if __name__ == "__main__":
  main()
