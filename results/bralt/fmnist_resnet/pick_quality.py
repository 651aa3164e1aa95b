"""Issue 16, point 3: what kind of points each row of the protocol bought, in a model-free space.

  python results/bralt/fmnist_resnet/pick_quality.py [--data_dir=../shared/data]
      [--components=50 --neighbours=10 --out=PATH]   # --out= prints only

``picks.md`` shows both BRAL-T readings buy Random's class mix, yet under the same training
(the Random + SuperLoss control) Random's picks beat them. This script asks how the bought
points differ *within* classes, in one fixed space that no row's model shaped: the top 50
principal components of the standardised Fashion-MNIST training pixels. Per trial (the
``queried`` indices of every round in ``<row>/seed<k>.json``):

- **typicality**: the share of a bought point's 10 nearest training neighbours (itself
  excluded) that carry its label, averaged over the bought points. Low = ambiguous or
  atypical points (near another class, or outliers of their own); the pool's mean is the
  reference a uniform sampler lands on. Since classes differ in typicality (a pullover's
  neighbours are often shirts and coats, a trouser's are trousers), the table also gives
  **within class**: a bought point's typicality minus its class's pool mean, averaged (0 for
  a uniform sampler, whatever its class mix; below 0 = harder than its class's average).
- **coverage**: the mean distance from a pool point to its nearest labeled point after the
  last round (initial set included), relative to Random's on the same seed (below 1 = the
  labels cover the pool more closely).
- **spread**: the mean distance from a bought point to the nearest other point bought in the
  same round, relative to Random's on the same seed (below 1 = each batch is more clumped).

Writes ``pick_quality.md`` (mean ± SE over the finished seeds of each row).
"""

import argparse
import json
import pathlib

import numpy as np

from jal.data.idx import load_idx_arrays

HERE = pathlib.Path(__file__).resolve().parent
ROWS = {  # row directory: table label (the rows of make_table.py)
  "random": "random",
  "margin": "margin",
  "bral_t": "bral_t (SPEC)",
  "bral_t_fill": "bral_t fill=score",
  "lossprediction": "lossprediction",
  "waal": "waal (cap 3,000)",
  "random_superloss": "random + SuperLoss (control)",
}
SEEDS = (0, 1, 2)
NEIGHBOURS = 10
COMPONENTS = 50


def pca_features(x: np.ndarray, components: int = COMPONENTS) -> np.ndarray:
  """Top principal components of standardised pixels.

  Args:
    x: uint8 ``[n, 28, 28]``.
    components: how many components to keep.

  Returns:
    float32 ``[n, components]``.
  """
  flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
  flat -= flat.mean(axis=0)
  # Eigenvectors of the [784, 784] covariance: cheaper than an SVD of the [n, 784] matrix.
  _, vecs = np.linalg.eigh(flat.T @ flat)
  return flat @ vecs[:, ::-1][:, :components]


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """``[len(a), len(b)]`` squared Euclidean distances (clipped at 0)."""
  d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
  return np.maximum(d, 0.0)


def neighbour_agreement(f: np.ndarray, y: np.ndarray, k: int = NEIGHBOURS,
                        chunk: int = 1000) -> np.ndarray:
  """Share of each point's ``k`` nearest other points that share its label, ``[n]``."""
  out = np.empty(len(f), np.float32)
  for start in range(0, len(f), chunk):
    d = _squared_distances(f[start:start + chunk], f)
    rows = np.arange(d.shape[0])
    d[rows, start + rows] = np.inf   # not its own neighbour
    nn = np.argpartition(d, k, axis=1)[:, :k]
    out[start:start + chunk] = (y[nn] == y[start:start + chunk, None]).mean(axis=1)
  return out


def nearest_distance(a: np.ndarray, b: np.ndarray, chunk: int = 4000,
                     exclude_self: bool = False) -> np.ndarray:
  """Distance from each row of ``a`` to its nearest row of ``b``, ``[len(a)]``."""
  out = np.empty(len(a), np.float32)
  for start in range(0, len(a), chunk):
    d = _squared_distances(a[start:start + chunk], b)
    if exclude_self:
      rows = np.arange(d.shape[0])
      d[rows, start + rows] = np.inf
    out[start:start + chunk] = np.sqrt(d.min(axis=1))
  return out


def within_class(agreement: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
  """Each point's typicality minus its class's pool mean, ``[len(idx)]``."""
  class_mean = np.bincount(y, weights=agreement) / np.bincount(y)
  return agreement[idx] - class_mean[y[idx]]


def trial_measures(history: dict, f: np.ndarray, y: np.ndarray, agreement: np.ndarray,
                   initial: np.ndarray) -> dict:
  """The three measures of one trial, unnormalised.

  Args:
    history: a finished trial's ``history.json``.
    f: ``[n, d]`` pool features.
    y: ``[n]`` pool labels.
    agreement: ``[n]`` from `neighbour_agreement`.
    initial: indices of the initial labeled set.
  """
  batches = [np.asarray(r["queried"], int) for r in history["rounds"] if r.get("queried")]
  bought = np.concatenate(batches)
  labeled = np.concatenate([initial, bought])
  spread = np.mean([nearest_distance(f[b], f[b], exclude_self=True).mean() for b in batches])
  excess = within_class(agreement, y, bought)
  classes = int(y.max()) + 1
  per_class = np.bincount(y[bought], weights=excess, minlength=classes)
  per_class /= np.maximum(np.bincount(y[bought], minlength=classes), 1)
  return {"typicality": float(agreement[bought].mean()),
          "within_class": float(excess.mean()),
          "within_by_class": per_class.tolist(),
          "coverage": float(nearest_distance(f, f[labeled]).mean()),
          "spread": float(spread)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--runs", default=str(HERE / "runs"))
  parser.add_argument("--components", type=int, default=COMPONENTS)
  parser.add_argument("--neighbours", type=int, default=NEIGHBOURS)
  parser.add_argument("--out", default=str(HERE / "pick_quality.md"),
                      help="where the table goes ('' = print only)")
  args = parser.parse_args()
  x, y, _, _ = load_idx_arrays("fashion_mnist", data_dir=args.data_dir)
  f = pca_features(x, args.components)
  agreement = neighbour_agreement(f, y, args.neighbours)
  measures = {}   # row -> seed -> measures
  for row in ROWS:
    for seed in SEEDS:
      path = HERE / row / f"seed{seed}.json"
      if not path.exists():
        continue
      history = json.loads(path.read_text())
      strategy = history["config"]["strategy"]
      ckpt = np.load(pathlib.Path(args.runs) / row / strategy / f"seed{seed}" / "checkpoint.npz")
      bought = np.concatenate([r["queried"] for r in history["rounds"] if r.get("queried")])
      initial = np.setdiff1d(np.flatnonzero(ckpt["mask"]), bought)
      measures.setdefault(row, {})[seed] = trial_measures(history, f, y, agreement, initial)
      print(row, seed, measures[row][seed], flush=True)
  table = markdown(measures, float(agreement.mean()), args.components, args.neighbours)
  if args.out:
    pathlib.Path(args.out).write_text(table)
  print(table)


def _mean_se(values: list[float], signed: bool = False) -> str:
  v = np.asarray(values)
  if len(v) == 1:
    return f"{v[0]:{'+' if signed else ''}.3f}"
  se = v.std(ddof=1) / np.sqrt(len(v))
  return f"{v.mean():{'+' if signed else ''}.3f} ± {se:.3f}"


def markdown(measures: dict, pool_agreement: float, components: int = COMPONENTS,
             neighbours: int = NEIGHBOURS) -> str:
  """The table: typicality, and coverage / spread relative to Random on the same seed."""
  lines = ["| strategy | typicality | within class | coverage / Random's | spread / Random's "
           "| seeds |", "|---|---|---|---|---|---|"]
  base = measures.get("random", {})
  for row, by_seed in measures.items():
    seeds = [s for s in by_seed if s in base]
    lines.append(
      f"| {ROWS[row]} | {_mean_se([by_seed[s]['typicality'] for s in by_seed])} | "
      f"{_mean_se([by_seed[s]['within_class'] for s in by_seed], signed=True)} | "
      f"{_mean_se([by_seed[s]['coverage'] / base[s]['coverage'] for s in seeds])} | "
      f"{_mean_se([by_seed[s]['spread'] / base[s]['spread'] for s in seeds])} | {len(by_seed)} |")
  lines += ["", "Within class, per class (mean over seeds):", "",
            "| strategy | " + " | ".join(f"class {c}" for c in range(10)) + " |",
            "|---|" + "---|" * 10]
  for row, by_seed in measures.items():
    per_class = np.mean([m["within_by_class"] for m in by_seed.values()], axis=0)
    lines.append(f"| {ROWS[row]} | " + " | ".join(f"{v:+.3f}" for v in per_class) + " |")
  return "\n".join(lines) + (
    f"\n\nTypicality: share of a bought point's {neighbours} nearest training neighbours "
    f"(top {components} principal components of the pixels) with its label; the pool's mean is "
    f"{pool_agreement:.3f}. Within class: typicality minus the pool mean of the point's class. "
    "Coverage: mean distance from a pool point to its nearest labeled "
    "point after the last round. Spread: mean distance from a bought point to the nearest "
    "other point of its round's batch. Made by `pick_quality.py`.\n")


if __name__ == "__main__":
  main()
