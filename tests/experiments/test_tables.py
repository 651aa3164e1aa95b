"""Aggregates and tables of compare / rambo_tables (experiments/tables.py)."""

import json
import shutil

import numpy as np
import pytest

from experiments import tables


def _hist(accs):
  rounds = [{"n_labeled": 10 * (i + 1), "test_accuracy": a, "train_seconds": 1.0,
             "score_seconds": 0.5, "select_seconds": 0.25, "queried": [i]}
            for i, a in enumerate(accs)]
  rounds[-1].update(score_seconds=0.0, select_seconds=0.0, queried=[])
  return {"rounds": rounds, "aubc": (accs[0] + accs[1]) / 2, "f_acc": accs[-1]}


def test_compare_aggregates_and_tabulates():
  summary = tables.aggregate({"a": [_hist([0.5, 0.7]), _hist([0.7, 0.9])]})
  s = summary["a"]
  assert s["acc_mean"] == pytest.approx([0.6, 0.8])
  assert s["acc_std"] == pytest.approx([0.1, 0.1])
  assert s["aubc"][0] == pytest.approx(0.7)
  # 95% CI half-width of [0.6, 0.8]: t_{0.975,1} * std(ddof=1) / sqrt(2) = 12.7062 * 0.1
  assert s["aubc"][1] == pytest.approx(12.7062047 * 0.1, rel=1e-5)
  assert s["seconds_per_round"] == {"train": 1.0, "score": 0.5, "select": 0.25}
  table = tables.markdown_table(summary)
  assert "| a | 0.6000±0.1000 | 0.8000±0.1000 |" in table
  assert "mean ± std over trials" in table and "95% Student-t" in table  # the legend


def test_one_trial_prints_no_nan():
  table = tables.markdown_table(tables.aggregate({"a": [_hist([0.5, 0.7])]}))
  assert "nan" not in table
  assert "| 0.6000±– | 0.7000±– |" in table


def test_finished_runs_by_the_loop_flag_or_old_wall_seconds(tmp_path):
  assert tables.finished({"finished": True}) and not tables.finished({"finished": False})
  assert tables.finished({"wall_seconds": 3.0})  # workdirs written before the loop marked it
  assert not tables.finished({"rounds": []})
  for name, seed, extra in (("a", 0, {"finished": True}), ("a", 1, {}),
                            ("b", 0, {"wall_seconds": 1.0})):
    d = tmp_path / name / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "history.json").write_text(json.dumps({**_hist([0.5, 0.6]), **extra}))
  got = tables.load_finished(str(tmp_path), ["a", "b", "c"], [0, 1])
  assert {k: len(v) for k, v in got.items()} == {"a": 1, "b": 1}


def test_one_round_summary():
  runs = [{"name": "rambo", "val_accuracy": v, "test_accuracy": t, "seconds": 2.0}
          for v, t in ((0.8, 0.9), (0.9, 0.7))]
  s = tables.summarize(runs + [{"name": "random", "val_accuracy": 0.5, "test_accuracy": 0.5,
                                "seconds": 1.0}])
  assert s["rambo"]["n"] == 2 and s["rambo"]["val_mean"] == pytest.approx(85.0)
  assert s["rambo"]["test_se"] == pytest.approx(10.0)
  assert "| random | 1 |" in tables.markdown(s)
  assert tables.ablation_name(True, False, True) == "rambo[bilevel ✓ OT × RankNet ✓]"


def test_rambo_tables_keys_runs_by_settings_fingerprint(tmp_path):
  import dataclasses

  from experiments import build, configs, rambo_tables
  c = configs.get("rambo_digits")
  cfg = build.rambo_config(c)
  fp = rambo_tables.fingerprint(c, cfg)
  other = c.copy_and_resolve_references()
  other.rambo.budget = int(c.rambo.budget) + 10
  assert rambo_tables.fingerprint(other, build.rambo_config(other)) != fp
  seeded = c.copy_and_resolve_references()
  seeded.seed = 7  # rambo_tables takes seeds from --seeds: not part of the fingerprint
  assert rambo_tables.fingerprint(seeded, build.rambo_config(seeded)) == fp
  # Runs written before fingerprints: adopted when the file's RAMBO settings are these.
  rambo = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
  path = tmp_path / "results.json"
  runs = [{"seed": 0, "name": "random"}, {"seed": 0, "name": "margin", "fingerprint": "x"}]
  path.write_text(json.dumps({"settings": {"rambo": rambo}, "runs": runs}))
  assert [r["fingerprint"] for r in rambo_tables.load_runs(path, fp, rambo)] == [fp, "x"]
  assert rambo_tables.load_runs(path, fp, {**rambo, "budget": -1})[0]["fingerprint"] == "unknown"
  path.write_text(json.dumps({"runs": runs})[:20])  # a truncated file is named
  with pytest.raises(ValueError, match="results.json is not a readable results file"):
    rambo_tables.load_runs(path, fp, rambo)


def test_penalty_markdown_counts_rounds_won_and_leaves_out_other_shapes():
  acc = {"a": [[0.5, 0.7, 0.9], [0.5, 0.7, 0.9]], "b": [[0.4, 0.8, 0.8], [0.4, 0.8, 0.8]],
         "c": [[0.1, 0.2, 0.3], [0.1, 0.2, 0.25]], "odd": [[0.1, 0.2]]}
  text = tables.penalty_markdown({n: {"acc": a} for n, a in acc.items()})
  assert "3 strategies, 2 trials (seeds [0, 1]), 3 rounds" in text and "['odd']" in text
  rows = [line for line in text.splitlines() if line.startswith("| a |")]
  # mean-based: a beats b in rounds 1 and 3, c in all 3 → "0 | 2 | 3 | 5"
  assert rows[0] == "| a | 0 | 2 | 3 | 5 |"
  # t-test: a − c is (0.4, 0.5, 0.6 / 0.65): constant in rounds 1–2 (t = ∞), t ≈ 24 in 3
  assert rows[1] == "| a | 0.00 | 0.67 | 1.00 | 1.67 |"


def test_paired_differences_markdown_pairs_trials_by_index():
  counts = [0, 10, 20]
  acc = {"a": [[0.5, 0.7, 0.9], [0.5, 0.6, 0.7], [0.4, 0.6, 0.8]],
         "b": [[0.4, 0.6, 0.8], [0.5, 0.7, 0.9], [0.3, 0.5, 0.7]], "odd": [[0.1, 0.2, 0.3]]}
  text = tables.paired_differences_markdown(
      {n: {"acc": a, "n_labeled": counts} for n, a in acc.items()})
  # trapezoid AUBC = (a0 + 2 a1 + a2) / 4: a 0.70, 0.60, 0.60; b 0.60, 0.70, 0.50
  d = np.array([0.10, -0.10, 0.10])
  want = f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(3):.4f}"
  assert "| a | – | " + want + " |" in text and "odd" not in text.split("\n| a")[0]
  assert "| b | " + f"{-d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(3):.4f}" + " | – |" in text
  assert tables.paired_differences_markdown({"a": {"acc": [[0.1, 0.2]], "n_labeled": [0, 1]}}) == ""


def test_partial_seeds_are_paired_by_seed_not_by_position():
  counts = [0, 10, 20]
  acc = {"a": [[0.5, 0.7, 0.9], [0.5, 0.6, 0.7], [0.4, 0.6, 0.8]],   # seeds 0, 1, 2
         "b": [[0.5, 0.7, 0.9], [0.3, 0.5, 0.7]],                     # seeds 1, 2
         "c": [[0.2, 0.2, 0.2]]}                                       # seed 2
  seeds = {"a": [0, 1, 2], "b": [1, 2], "c": [2]}
  summary = {n: {"acc": a, "n_labeled": counts, "seeds": seeds[n]} for n, a in acc.items()}
  text = tables.paired_differences_markdown(summary)
  # AUBC: a (0.70, 0.60, 0.60), b (0.70, 0.50) on seeds 1, 2 → a − b over seeds 1, 2 = (−0.1, 0.1)
  d = np.array([-0.10, 0.10])
  assert "| a | – | " + f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(2):.4f} |" in text
  assert "| c |" not in text  # one trial: no paired SE
  # F-acc (the last accuracy): a (0.7, 0.8) − b (0.9, 0.7) on seeds 1, 2 = (−0.2, 0.1)
  f = np.array([-0.20, 0.10])
  facc = text.split("paired F-acc")[1]
  assert "| a | – | " + f"{f.mean():+.4f} ± {f.std(ddof=1) / np.sqrt(2):.4f} |" in facc
  # the penalty matrices take the seed all three ran (2): a 0.8 > b 0.7 > c 0.2 in round 3
  pen = tables.penalty_markdown(summary)
  assert "3 strategies, 1 trials (seeds [2]), 3 rounds" in pen
  assert "| a | 0 | 3 | 3 | 6 |" in pen


def test_aggregate_records_each_trial_seed():
  h0, h1 = _hist([0.5, 0.7]), _hist([0.6, 0.8])
  h0["config"], h1["config"] = {"seed": 4}, {"seed": 7}
  assert tables.aggregate({"a": [h0, h1]})["a"]["seeds"] == [4, 7]


def test_write_report_writes_the_four_files(tmp_path):
  summary = tables.aggregate({"a": [_hist([0.5, 0.7]), _hist([0.7, 0.9])],
                              "b": [_hist([0.4, 0.6]), _hist([0.6, 0.6])]})
  table = tables.write_report(tmp_path / "out", summary, title="t")
  written = json.loads((tmp_path / "out" / "summary.json").read_text())
  assert written == json.loads(json.dumps(summary))
  assert (tmp_path / "out" / "table.md").read_text() == table and "| b |" in table
  penalty = (tmp_path / "out" / "penalty.md").read_text()
  # paired AUBC differences a − b: 0.1 and 0.2
  assert "paired AUBC difference" in penalty and "| a | – | +0.1500 ± 0.0500 |" in penalty
  assert (tmp_path / "out" / "curve.png").read_bytes()[:4] == b"\x89PNG"
  assert not (tmp_path / "out" / "picks.md").exists()  # no class counts recorded


def _counted(counts):
  """A history whose rounds hold ``class_counts`` ``counts[r]``."""
  h = _hist([0.5 + 0.1 * r for r in range(len(counts))])
  for r, c in zip(h["rounds"], counts):
    r["class_counts"] = c
  return h


def test_picks_are_the_class_shares_of_the_labels_bought_after_round_0(tmp_path):
  # Trial 1 buys [6, 2, 2] (shares .6 .2 .2), trial 2 buys [2, 2, 6]: mean .4 .2 .4.
  a = [_counted([[5, 5, 5], [9, 6, 5], [11, 7, 7]]), _counted([[3, 4, 5], [4, 5, 8], [5, 6, 11]])]
  b = [_counted([[5, 5, 5], [5, 5, 5]])]  # bought nothing: no shares
  summary = tables.aggregate({"a": a, "b": b, "c": [_hist([0.5, 0.6])]})
  np.testing.assert_allclose(summary["a"]["pick_shares"], [0.4, 0.2, 0.4], atol=1e-12)
  assert "pick_shares" not in summary["b"] and "pick_shares" not in summary["c"]
  tables.write_report(tmp_path, summary)
  picks = (tmp_path / "picks.md").read_text()
  assert "| a | 0.400 | 0.200 | 0.400 | 2.00 | 2 |" in picks and "| b |" not in picks


def test_store_finished_keeps_finished_runs_under_new_labels(tmp_path):
  for wd, seed, extra in (("w1", 0, {"finished": True}), ("w1", 1, {"finished": False}),
                          ("w2", 1, {"finished": True})):
    d = tmp_path / wd / "s" / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "history.json").write_text(json.dumps({**_hist([0.5, 0.6 + seed]), **extra}))
  rows = {"x": (tmp_path / "w1", "s"), "y": (tmp_path / "w2", "s"), "z": (tmp_path / "w3", "s")}
  got = tables.store_finished(rows, [0, 1], tmp_path / "kept")
  assert sorted(got) == ["x", "y"] and len(got["x"]) == 1 and got["y"][0]["f_acc"] == 1.6
  assert sorted(p.name for p in (tmp_path / "kept").glob("*/*")) == ["seed0.json", "seed1.json"]
  # the scratch workdirs gone: the stored copies answer
  shutil.rmtree(tmp_path / "w1")
  shutil.rmtree(tmp_path / "w2")
  assert tables.store_finished(rows, [0, 1], tmp_path / "kept") == got
