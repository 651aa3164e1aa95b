r"""Runs several strategies × seeds of one protocol and writes a comparison table.

  python -m experiments.compare --config=mnist_lenet \
      --strategies=random,margin,entropy,coreset,badge --seeds=0,1,2 --workdir=runs/mnist

Each (strategy, seed) runs in ``workdir/<strategy>/seed<k>`` through ``experiments.al.run``
(so an interrupted comparison resumes); the aggregate goes to ``workdir/summary.json``,
``workdir/table.md`` and ``workdir/curve.png``.
"""

import json
import pathlib

import numpy as np
from absl import app, flags

from experiments import common, configs
from jal import metrics

# allow_override: the test suite imports several binaries into one process.
_CONFIG = flags.DEFINE_enum("config", "mnist_lenet", configs.CONFIGS, "Protocol.",
    allow_override=True)
_STRATEGIES = flags.DEFINE_list("strategies", ["random", "margin"], "Strategies to compare.",
    allow_override=True)
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.", allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/jal_compare", "Output directory.",
    allow_override=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "IDX data dir (default: $JAL_DATA_DIR).",
    allow_override=True)
_COLLECT = flags.DEFINE_bool("collect_only", False, "Only aggregate the finished runs in "
    "--workdir (no training).", allow_override=True)


def aggregate(results: dict[str, list[dict]]) -> dict:
  """Summarises ``{strategy: [history dict per seed]}`` into per-strategy statistics."""
  out = {}
  for name, runs in results.items():
    acc = np.asarray([[r["test_accuracy"] for r in h["rounds"]] for h in runs])  # [T, R]
    # Training happens every round; scoring/selection only in rounds that query.
    secs = {k: float(np.mean([r[f"{k}_seconds"] for h in runs for r in h["rounds"]
                              if k == "train" or r.get("queried")]))
            for k in ("train", "score", "select")}
    # Strategies that report phases of their pick (BRAL-T: RL and selection).
    for k in ("rl", "selection"):
      v = [r["pick_info"][f"{k}_seconds"] for h in runs for r in h["rounds"]
           if f"{k}_seconds" in r.get("pick_info", {})]
      if v:
        secs[k] = float(np.mean(v))
    aubcs = [h["aubc"] for h in runs]
    faccs = [h["f_acc"] for h in runs]
    out[name] = {
        "n_labeled": [r["n_labeled"] for r in runs[0]["rounds"]],
        "acc_mean": acc.mean(0).tolist(), "acc_std": acc.std(0).tolist(),
        "aubc": metrics.mean_ci(aubcs) if len(aubcs) > 1 else (aubcs[0], float("nan")),
        "f_acc": metrics.mean_ci(faccs) if len(faccs) > 1 else (faccs[0], float("nan")),
        "seconds_per_round": secs, "trials": len(runs), "acc": acc.tolist(),
    }
  return out


def markdown_table(summary: dict) -> str:
  """Accuracy per round (mean ± std over seeds), AUBC/F-acc (mean ± 95% CI), seconds/round."""
  names = list(summary)
  counts = summary[names[0]]["n_labeled"]
  head = "| strategy | " + " | ".join(str(c) for c in counts) + " | AUBC | F-acc | train s | " \
         "score s | select s | RL s | selection s | trials |"
  lines = [head, "|" + "---|" * (len(counts) + 9)]
  for n in names:
    s = summary[n]
    accs = " | ".join(f"{m:.4f}±{d:.4f}" for m, d in zip(s["acc_mean"], s["acc_std"]))
    sec = s["seconds_per_round"]
    lines.append(f"| {n} | {accs} | {s['aubc'][0]:.4f}±{s['aubc'][1]:.4f} | "
                 f"{s['f_acc'][0]:.4f}±{s['f_acc'][1]:.4f} | {sec['train']:.2f} | "
                 f"{sec['score']:.2f} | {sec['select']:.2f} | "
                 + " | ".join(f"{sec[k]:.2f}" if k in sec else "–" for k in ("rl", "selection"))
                 + f" | {s['trials']} |")
  return "\n".join(lines) + "\n"


def compare(config_name: str, strategies: list[str], seeds: list[int], workdir: str,
            data_dir: str | None = None, overrides: dict | None = None) -> dict:
  """Runs every (strategy, seed) and writes the aggregate; returns the summary dict."""
  root = pathlib.Path(workdir)
  results = {}
  for name in strategies:
    for seed in seeds:
      config = common.resolve_config(config_name, {**(overrides or {}), "strategy": name,
                                                   "seed": seed})
      print(f"== {name} seed {seed}", flush=True)
      results.setdefault(name, []).append(
          common.run(config, str(root / name / f"seed{seed}"), data_dir))
  summary = aggregate(results)
  root.mkdir(parents=True, exist_ok=True)
  (root / "summary.json").write_text(json.dumps(summary, indent=1))
  table = markdown_table(summary)
  (root / "table.md").write_text(table)
  metrics.plot_curve({n: (np.asarray(s["n_labeled"]), np.asarray(s["acc"]))
                      for n, s in summary.items()}, root / "curve.png", title=config_name)
  print(table, flush=True)
  return summary


def collect(workdir: str, strategies: list[str], seeds: list[int]) -> dict:
  """Aggregates the *finished* runs under ``workdir`` (unfinished or missing ones are
  skipped); writes ``summary.json`` and ``table.md`` as :func:`compare` does."""
  root = pathlib.Path(workdir)
  results = {}
  for name in strategies:
    for seed in seeds:
      path = root / name / f"seed{seed}" / "history.json"
      if path.exists():
        h = json.loads(path.read_text())
        if "wall_seconds" in h:
          results.setdefault(name, []).append(h)
  if not results:
    raise ValueError(f"no finished runs under {workdir}")
  summary = aggregate(results)
  (root / "summary.json").write_text(json.dumps(summary, indent=1))
  table = markdown_table(summary)
  (root / "table.md").write_text(table)
  print(table, flush=True)
  return summary


def _main():
  seeds = [int(s) for s in _SEEDS.value]
  if _COLLECT.value:
    collect(_WORKDIR.value, _STRATEGIES.value, seeds)
  else:
    compare(_CONFIG.value, _STRATEGIES.value, seeds, _WORKDIR.value, _DATA_DIR.value)


if __name__ == "__main__":
  app.run(common.main_guard(_main))


