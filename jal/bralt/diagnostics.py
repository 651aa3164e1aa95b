"""Does BRAL-T's RL choice track the oracle? Agreement between predicted rewards and GraNd.

GradNd-GT (BRAL-T Fig. 8) ranks unlabeled points by their true-label GraNd; BRAL-T's reward
net is meant to approximate that choice without labels. These functions measure how well it
does on one round: the rank correlation between each action's predicted reward and the mean
oracle score of its members, and where a selected batch's oracle scores sit in the pool.

Example:
  >>> import numpy as np
  >>> pred = np.array([3.0, 1.0, 2.0])
  >>> act = np.array([0, 0, 1, 2, -1])
  >>> oracle = np.array([5.0, 7.0, 1.0, 3.0, 9.0])
  >>> round(action_agreement(pred, act, oracle)["spearman"], 3)
  1.0
"""

import numpy as np
from scipy import stats

__all__ = ["spearman", "action_agreement", "batch_quality"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman rank correlation of two 1-D arrays (``nan`` if either is constant)."""
  if np.ptp(a) == 0 or np.ptp(b) == 0:
    return float("nan")
  return float(stats.spearmanr(a, b)[0])


def action_agreement(pred: np.ndarray, act_assign: np.ndarray, oracle: np.ndarray) -> dict:
  """Predicted reward per action against the mean oracle score of the action's members.

  Args:
    pred: ``[P]`` predicted rewards (non-finite = invalid action, ignored).
    act_assign: ``[n]`` action id of each pool row, −1 for rows in no action.
    oracle: ``[n]`` oracle scores (e.g. true-label GraNd), read where ``act_assign ≥ 0``.

  Returns:
    ``{"spearman", "n_actions", "top_action_oracle_percentile"}``: the rank correlation over
    valid non-empty actions, their number, and the percentile (0–100) among those actions
    of the mean oracle score of the action the reward net ranks first.
  """
  pred, act, oracle = np.asarray(pred, np.float64), np.asarray(act_assign), np.asarray(oracle)
  p = pred.shape[0]
  inside = act >= 0
  counts = np.bincount(act[inside], minlength=p)[:p]
  sums = np.bincount(act[inside], weights=oracle[inside], minlength=p)[:p]
  ok = (counts > 0) & np.isfinite(pred)
  if ok.sum() < 2:
    return {"spearman": float("nan"), "n_actions": int(ok.sum()),
            "top_action_oracle_percentile": float("nan")}
  means = sums[ok] / counts[ok]
  top = int(np.argmax(pred[ok]))
  pct = 100.0 * (stats.rankdata(means)[top] - 1) / max(means.size - 1, 1)
  return {"spearman": spearman(pred[ok], means), "n_actions": int(ok.sum()),
          "top_action_oracle_percentile": float(pct)}


def batch_quality(idx: np.ndarray, oracle: np.ndarray, candidates: np.ndarray) -> dict:
  """Where a batch's oracle scores sit among the candidate rows.

  Args:
    idx: ``[b]`` selected rows.
    oracle: ``[n]`` oracle scores.
    candidates: ``[n]`` bool rows the batch was chosen from (the unlabeled pool).

  Returns:
    ``{"mean", "mean_percentile"}``: the batch's mean oracle score and the mean percentile
    (0–100) of its rows among the candidates.
  """
  oracle, cand = np.asarray(oracle, np.float64), np.asarray(candidates, bool)
  pool = np.sort(oracle[cand])
  sel = oracle[np.asarray(idx)]
  pct = 100.0 * np.searchsorted(pool, sel, side="left") / max(pool.size - 1, 1)
  return {"mean": float(sel.mean()), "mean_percentile": float(np.clip(pct, 0, 100).mean())}
