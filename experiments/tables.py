"""Aggregates and tables of the sweep binaries (``compare``, ``rambo_tables``); no flags here."""

import json
import pathlib

import numpy as np

from jal import metrics
from jal.files import atomic_write

__all__ = ["ablation_name", "aggregate", "finished", "load_finished", "markdown",
           "markdown_table", "paired_differences_markdown", "penalty_markdown",
           "picks_markdown", "store_finished", "summarize", "write_report"]


# ----------------------------------------------------------------------------- AL curves


def finished(history: dict) -> bool:
  """Whether a ``history.json`` dict is of a finished run (``jal.run_loop`` marks it
  ``"finished"``; workdirs of older versions carry ``"wall_seconds"`` instead)."""
  if "finished" in history:
    return bool(history["finished"])
  return "wall_seconds" in history


def load_finished(workdir: str, strategies: list[str], seeds: list[int]) -> dict:
  """``{strategy: [history dict per finished seed]}`` of ``workdir/<strategy>/seed<k>``
  (unfinished or missing runs are skipped)."""
  root = pathlib.Path(workdir)
  results = {}
  for name in strategies:
    for seed in seeds:
      path = root / name / f"seed{seed}" / "history.json"
      if path.exists():
        h = json.loads(path.read_text())
        if finished(h):
          results.setdefault(name, []).append(h)
  return results


def store_finished(rows: dict[str, tuple[str | pathlib.Path, str]], seeds: list[int],
                   store: str | pathlib.Path) -> dict:
  """Keeps the finished runs of rows that live in different workdirs, under labels of one's
  choosing (e.g. one strategy run with two settings).

  Args:
    rows: ``{key: (workdir, strategy)}``; a run is ``workdir/<strategy>/seed<k>/history.json``.
    seeds: the seeds ``k`` to look for.
    store: where the finished histories are copied, as ``store/<key>/seed<k>.json``; the
      copies outlive a scratch workdir and are read back when the run is gone.

  Returns:
    ``{key: [history dict per stored seed, in seed order]}`` (keys without one left out).
  """
  store = pathlib.Path(store)
  out = {}
  for key, (workdir, strategy) in rows.items():
    for seed in seeds:
      src = pathlib.Path(workdir) / strategy / f"seed{seed}" / "history.json"
      dst = store / key / f"seed{seed}.json"
      if src.exists():
        text = src.read_text()
        if finished(json.loads(text)):
          dst.parent.mkdir(parents=True, exist_ok=True)
          atomic_write(dst, text)
      if dst.exists():
        out.setdefault(key, []).append(json.loads(dst.read_text()))
  return out


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
    # Peak resident memory of a run (max over its rounds; mean over seeds). Only a run in its
    # own process (experiments.al) has its own peak; in compare's process it is cumulative.
    peaks = [max(r["peak_rss_mib"] for r in h["rounds"]) for h in runs
             if all("peak_rss_mib" in r for r in h["rounds"])]
    aubcs = [h["aubc"] for h in runs]
    faccs = [h["f_acc"] for h in runs]
    out[name] = {
        "n_labeled": [r["n_labeled"] for r in runs[0]["rounds"]],
        "acc_mean": acc.mean(0).tolist(), "acc_std": acc.std(0).tolist(),
        "aubc": metrics.mean_ci(aubcs) if len(aubcs) > 1 else (aubcs[0], float("nan")),
        "f_acc": metrics.mean_ci(faccs) if len(faccs) > 1 else (faccs[0], float("nan")),
        "seconds_per_round": secs, "trials": len(runs), "acc": acc.tolist(),
        "seeds": [h.get("config", {}).get("seed", k) for k, h in enumerate(runs)],
    }
    if peaks:
      out[name]["peak_rss_mib"] = float(np.mean(peaks))
    shares = [_pick_shares(h) for h in runs]
    if all(x is not None for x in shares):
      out[name]["pick_shares"] = np.mean(shares, axis=0).tolist()
  return out


def _pick_shares(history: dict) -> np.ndarray | None:
  """Share of each class ``[C]`` among the labels a run queried after round 0 (last round's
  ``class_counts`` minus round 0's); None when the history has no class counts or no query."""
  rounds = history["rounds"]
  if len(rounds) < 2 or any("class_counts" not in r for r in rounds):
    return None
  picked = np.asarray(rounds[-1]["class_counts"]) - np.asarray(rounds[0]["class_counts"])
  return picked / picked.sum() if picked.sum() > 0 else None


def write_report(root: str | pathlib.Path, summary: dict, title: str = "") -> str:
  """Writes ``summary.json``, ``table.md``, ``penalty.md`` (penalty matrices and paired AUBC
  and F-acc differences), ``picks.md`` (:func:`picks_markdown`, when the runs recorded class
  counts) and ``curve.png`` (accuracy-budget curves titled ``title``) of an
  :func:`aggregate` ``summary`` under ``root``; returns the table."""
  root = pathlib.Path(root)
  atomic_write(root / "summary.json", json.dumps(summary, indent=1))
  table = markdown_table(summary)
  atomic_write(root / "table.md", table)
  atomic_write(root / "penalty.md",
               penalty_markdown(summary) + paired_differences_markdown(summary))
  if any("pick_shares" in s for s in summary.values()):
    atomic_write(root / "picks.md", picks_markdown(summary))
  metrics.plot_curve({n: (np.asarray(s["n_labeled"]), np.asarray(s["acc"]))
                      for n, s in summary.items()}, root / "curve.png", title=title)
  return table


def _pm(mean: float, spread: float) -> str:
  """``mean±spread``; a spread one trial cannot give (NaN) is printed as ``±–``."""
  return f"{mean:.4f}±" + ("–" if np.isnan(spread) else f"{spread:.4f}")


def markdown_table(summary: dict) -> str:
  """Accuracy per round (mean ± std over seeds), AUBC/F-acc (mean ± 95% CI), seconds/round.

  With one trial the CI is undefined and printed as ``±–``."""
  names = list(summary)
  counts = summary[names[0]]["n_labeled"]
  head = "| strategy | " + " | ".join(str(c) for c in counts) + " | AUBC | F-acc | train s | " \
         "score s | select s | RL s | selection s | peak MiB | trials |"
  lines = [head, "|" + "---|" * (len(counts) + 10)]
  for n in names:
    s = summary[n]
    accs = " | ".join(f"{m:.4f}±{d:.4f}" for m, d in zip(s["acc_mean"], s["acc_std"]))
    sec = s["seconds_per_round"]
    lines.append(f"| {n} | {accs} | {_pm(*s['aubc'])} | {_pm(*s['f_acc'])} | {sec['train']:.2f} | "
                 f"{sec['score']:.2f} | {sec['select']:.2f} | "
                 + " | ".join(f"{sec[k]:.2f}" if k in sec else "–" for k in ("rl", "selection"))
                 + (f" | {s['peak_rss_mib']:.0f}" if "peak_rss_mib" in s else " | –")
                 + f" | {s['trials']} |")
  lines.append("\nAccuracy at each labeled count: mean ± std over trials (ddof 0); AUBC, F-acc: "
               "mean ± 95% Student-t half-width; seconds: mean per round.")
  return "\n".join(lines) + "\n"


def picks_markdown(summary: dict) -> str:
  """Which classes each strategy queried: per class, the share of the labels bought after
  round 0 (mean over trials), and the largest share over the smallest. A strategy that
  picks like Random shows the pool's class shares; an uncertainty sampler piles onto the
  confusable classes."""
  names = [n for n, s in summary.items() if "pick_shares" in s]
  classes = len(summary[names[0]]["pick_shares"])
  lines = ["| strategy | " + " | ".join(f"class {c}" for c in range(classes))
           + " | max/min | trials |", "|---" * (classes + 3) + "|"]
  for n in names:
    p = np.asarray(summary[n]["pick_shares"])
    ratio = f"{p.max() / p.min():.2f}" if p.min() > 0 else "inf"
    lines.append(f"| {n} | " + " | ".join(f"{v:.3f}" for v in p)
                 + f" | {ratio} | {summary[n]['trials']} |")
  lines.append("\nShare of each class among the labels queried after round 0 (last round's "
               "class counts minus round 0's), mean over trials.")
  return "\n".join(lines) + "\n"


def penalty_markdown(summary: dict) -> str:
  """BRAL-T's mean-based penalty matrix (App. C.2: rounds in which the row's mean accuracy is
  above the column's) and BADGE's paired t-test matrix (fraction of rounds in which the row
  significantly beats the column, two-sided 5%, ``t`` critical for the trial count), over
  the strategies with the most common round count, on the seeds they all ran
  (:func:`_common_trials`)."""
  names, acc, seeds = _common_trials(summary)
  trials = acc.shape[1]
  left = sorted(set(summary) - set(names))
  blocks = [f"{len(names)} strategies, {trials} trials (seeds {seeds}), {acc.shape[2]} rounds"
            + (f" (left out: {left})" if left else "")]
  mats = [("mean-based (rounds won)", metrics.penalty_matrix_mean(acc), "{:.0f}")]
  if trials >= 2:
    t = metrics.t_critical(0.95, trials - 1)
    mats.append((f"paired t-test (fraction of rounds, t > {t:.3f})",
                 metrics.penalty_matrix_ttest(acc, t), "{:.2f}"))
  for title, p, fmt in mats:
    lines = [f"\n**{title}**: row beats column\n",
             "| | " + " | ".join(names) + " | row sum |", "|---" * (len(names) + 2) + "|"]
    for i, n in enumerate(names):
      lines.append(f"| {n} | " + " | ".join(fmt.format(v) for v in p[i])
                   + f" | {fmt.format(p[i].sum())} |")
    lines.append("| column sum (beaten) | " + " | ".join(fmt.format(v) for v in p.sum(0))
                 + " | |")
    blocks.append("\n".join(lines))
  return "\n".join(blocks) + "\n"


def _by_seed(s: dict) -> dict:
  """``{seed: accuracy curve}`` of one summary row (trial ``k`` is seed ``k`` in summaries
  written before the seeds were recorded)."""
  return dict(zip(s.get("seeds", range(len(s["acc"]))), s["acc"]))


def _most_common_rounds(summary: dict) -> list[str]:
  """The strategies of ``summary`` whose curves have the most common number of rounds."""
  rounds = {n: len(s["acc"][0]) for n, s in summary.items()}
  common = max(set(rounds.values()), key=list(rounds.values()).count)
  return [n for n in summary if rounds[n] == common]


def _common_trials(summary: dict) -> tuple[list[str], np.ndarray, list]:
  """The strategies with the most common round count, their accuracies ``[m, T, L]`` on the
  ``T`` seeds they all ran, and those seeds. Where they share none, the strategies with the
  most common seed set instead."""
  names = _most_common_rounds(summary)
  curves = {n: _by_seed(summary[n]) for n in names}
  seeds = sorted(set.intersection(*(set(c) for c in curves.values())))
  if not seeds:
    sets = {n: tuple(sorted(c)) for n, c in curves.items()}
    best = max(set(sets.values()), key=list(sets.values()).count)
    names, seeds = [n for n in names if sets[n] == best], list(best)
  return names, np.asarray([[curves[n][k] for k in seeds] for n in names]), seeds


def paired_differences_markdown(summary: dict) -> str:
  """Paired AUBC and F-acc differences, row − column: mean ± standard error over the seeds both
  ran (each trial's AUBC from its curve and the row's ``n_labeled``, its F-acc the curve's last
  accuracy; the number of pairs is shown where it is not the table's largest), for the
  strategies with at least 2 trials and the most common round count. Empty when no two of
  them share 2 seeds."""
  names = [n for n in _most_common_rounds(summary) if len(summary[n]["acc"]) >= 2]
  curves = {n: _by_seed(summary[n]) for n in names}
  shared = {(a, b): sorted(set(curves[a]) & set(curves[b])) for a in names for b in names}
  most = max((len(v) for (a, b), v in shared.items() if a != b), default=0)
  if most < 2:
    return ""
  blocks = []
  for title, stat in (("AUBC", lambda n, a: metrics.aubc_from_counts(summary[n]["n_labeled"], a)),
                      ("F-acc", lambda n, a: float(a[-1]))):
    value = {n: {k: stat(n, a) for k, a in c.items()} for n, c in curves.items()}

    def cell(a, b, value=value):
      ks = shared[a, b]
      if a == b or len(ks) < 2:
        return "–"
      d = np.array([value[a][k] - value[b][k] for k in ks])
      return "{:+.4f} ± {:.4f}".format(*metrics.mean_se(d)) + (
          f" ({len(ks)})" if len(ks) < most else "")

    lines = [f"\n**paired {title} difference (row − column, mean ± SE over the seeds both ran: "
             f"{most}, or the number in brackets)**\n",
             "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {a} | " + " | ".join(cell(a, b) for b in names) + " |" for a in names]
    blocks.append("\n".join(lines) + "\n")
  return "".join(blocks)


# ----------------------------------------------------------------------------- one round


def ablation_name(b: bool, o: bool, r: bool) -> str:
  """The row name of a RAMBO ablation (bilevel, OT, RankNet switches)."""
  mark = lambda v: "✓" if v else "×"
  return f"rambo[bilevel {mark(b)} OT {mark(o)} RankNet {mark(r)}]"


def summarize(results: list[dict]) -> dict:
  """``{name: {n, val_mean, val_se, test_mean, test_se}}`` over the runs of each name."""
  out = {}
  for name in dict.fromkeys(r["name"] for r in results):
    rs = [r for r in results if r["name"] == name]
    row = {"n": len(rs)}
    for m in ("val", "test"):
      a = np.array([r[f"{m}_accuracy"] for r in rs]) * 100
      row[f"{m}_mean"] = float(a.mean())
      row[f"{m}_se"] = float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")
    row["seconds_mean"] = float(np.mean([r["seconds"] for r in rs]))
    out[name] = row
  return out


def markdown(summary: dict) -> str:
  """The one-round table: validation and test accuracy (mean ± standard error), s/run."""
  lines = ["| strategy | trials | val acc (%) | test acc (%) | s/run |", "|---|---|---|---|---|"]
  for name, r in summary.items():
    lines.append(f"| {name} | {r['n']} | {r['val_mean']:.2f} ± {r['val_se']:.2f} | "
                 f"{r['test_mean']:.2f} ± {r['test_se']:.2f} | {r['seconds_mean']:.0f} |")
  return "\n".join(lines) + "\n"
