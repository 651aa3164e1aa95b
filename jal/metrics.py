"""Evaluation protocol for deep active learning: AUBC, F-acc, penalty matrices, CIs, plots.

Conventions
-----------
* An accuracy curve ``acc [r]`` holds the test accuracy after each round, where
  index 0 is the model trained on the *initial* labeled set (0 queried labels)
  and index ``k`` is the model after the ``k``-th query batch.
* Multi-method, multi-trial results are shaped ``[m, T, L]``: ``m`` methods,
  ``T`` independent trials (seeds), ``L`` rounds.

Everything here is pure numpy; scipy (t quantiles) and matplotlib (plots) are
optional and imported lazily.
"""

from __future__ import annotations

import math
import os
import pathlib
import statistics
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
  "aubc",
  "aubc_from_counts",
  "f_acc",
  "mean_ci",
  "mean_se",
  "penalty_matrix_mean",
  "penalty_matrix_ttest",
  "plot_curve",
  "round_aubc",
  "t_critical",
]


def _as_curve(accuracies, name: str = "accuracies", min_len: int = 2) -> np.ndarray:
  """Validates a 1-D accuracy curve: finite, within [0, 1], at least ``min_len`` points."""
  a = np.asarray(accuracies, dtype=np.float64)
  if a.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
  if a.shape[0] < min_len:
    raise ValueError(f"{name} needs at least {min_len} points, got {a.shape[0]}")
  if not np.all(np.isfinite(a)):
    raise ValueError(f"{name} must be finite")
  if np.any(a < 0.0) or np.any(a > 1.0):
    raise ValueError(f"{name} must lie in [0, 1]")
  return a


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
  """Trapezoidal integral of ``y [r]`` over ``x [r]`` (independent of numpy's renames)."""
  return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


# ----------------------------------------------------------------------------- AUBC


def aubc(accuracies, budget_per_round: int, quota: int | None = None) -> float:
  """Area under the budget curve (DeepAL+, Zhan et al. 2021, ``get_aubc``).

  Trapezoidal area under test accuracy against the number of *queried* labels,
  normalised by the quota ``Q``:
  ``AUBC = (1/Q) * sum_r w_r * (acc_r + acc_{r+1}) / 2``, where every segment has
  width ``b`` except that, when ``Q % b != 0``, the last segment has width ``Q % b``
  (the final round queries only the remaining labels). DeepAL+'s reference code
  uses ``Q % b + 1`` for that last width, which we treat as an off-by-one and do
  not reproduce; for divisible quotas both agree. A constant curve ``a`` gives
  ``AUBC = a``.

  Args:
    accuracies: ``[R+1]`` test accuracies in [0, 1]; index 0 is the initial set.
    budget_per_round: ``b > 0``, labels queried per round.
    quota: total queried labels ``Q > 0``; ``None`` means ``b * R``.

  Returns:
    The unrounded AUBC (use :func:`round_aubc` for the 3-decimal paper format).

  Raises:
    ValueError: on fewer than 2 points, non-finite or out-of-range accuracies,
      non-positive ``b`` / ``Q``, or ``len(accuracies) != ceil(Q / b) + 1``.
  """
  a = _as_curve(accuracies)
  b = int(budget_per_round)
  if b != budget_per_round or b <= 0:
    raise ValueError(f"budget_per_round must be a positive integer, got {budget_per_round}")
  n_seg = a.shape[0] - 1
  if quota is None:
    q = b * n_seg
  else:
    q = int(quota)
    if q != quota or q <= 0:
      raise ValueError(f"quota must be a positive integer, got {quota}")
    expected = -(-q // b) + 1
    if a.shape[0] != expected:
      raise ValueError(
        f"quota={q} with budget_per_round={b} implies {expected} accuracy points "
        f"(ceil(Q/b)+1), got {a.shape[0]}")
  widths = np.full((n_seg,), float(b))
  widths[-1] = float(q - b * (n_seg - 1))  # == q % b, or b when divisible
  return float(np.sum(widths * (a[1:] + a[:-1]) / 2.0) / q)


def aubc_from_counts(n_labeled, accuracies) -> float:
  """AUBC of a general curve given the labeled-set size at every round.

  Trapezoid over queried labels ``n_labeled - n_labeled[0]`` divided by the total
  number queried ``n_labeled[-1] - n_labeled[0]``. Agrees with :func:`aubc` for a
  regular schedule (including a short last round).

  Args:
    n_labeled: ``[r]`` strictly increasing labeled-set sizes (index 0 = initial).
    accuracies: ``[r]`` test accuracies in [0, 1].

  Returns:
    The unrounded AUBC.

  Raises:
    ValueError: on mismatched lengths, fewer than 2 points, non-increasing counts
      or invalid accuracies.
  """
  a = _as_curve(accuracies)
  n = np.asarray(n_labeled, dtype=np.float64)
  if n.shape != a.shape:
    raise ValueError(f"n_labeled shape {n.shape} != accuracies shape {a.shape}")
  if not np.all(np.isfinite(n)) or np.any(n < 0):
    raise ValueError("n_labeled must be finite and non-negative")
  if np.any(np.diff(n) <= 0):
    raise ValueError("n_labeled must be strictly increasing")
  queried = n - n[0]
  return _trapezoid(a, queried) / float(queried[-1])


def round_aubc(x: float) -> float:
  """Rounds an AUBC (or any score) to 3 decimals, as reported in the papers."""
  return round(float(x), 3)


def f_acc(accuracies) -> float:
  """Final accuracy (F-acc): the test accuracy after the last round.

  Args:
    accuracies: ``[r]`` test accuracies in [0, 1], ``r >= 1``.

  Returns:
    ``accuracies[-1]`` as a float.
  """
  return float(_as_curve(accuracies, min_len=1)[-1])


# ----------------------------------------------------------------------------- penalty matrices


def _as_results(acc, min_trials: int = 1) -> np.ndarray:
  """Validates ``acc [m, T, L]``."""
  x = np.asarray(acc, dtype=np.float64)
  if x.ndim != 3:
    raise ValueError(f"acc must be shaped [methods, trials, rounds], got shape {x.shape}")
  m, t, l = x.shape
  if m < 1 or l < 1:
    raise ValueError(f"acc needs at least one method and one round, got shape {x.shape}")
  if t < min_trials:
    raise ValueError(f"need at least {min_trials} trials, got {t}")
  if not np.all(np.isfinite(x)):
    raise ValueError("acc must be finite")
  return x


def penalty_matrix_ttest(acc, alpha_t: float = 2.776) -> np.ndarray:
  """Pairwise penalty matrix of Ash et al. (BADGE, BAIT).

  For each pair ``(i, j)`` and round ``l`` we form the *paired* trial-wise
  differences ``d = acc[i, :, l] - acc[j, :, l]`` (trial ``k`` of every method
  shares a seed / initial set) and the one-sample t statistic
  ``t = sqrt(T) * mean(d) / std(d, ddof=1)``. If ``t > alpha_t`` method ``i``
  significantly beats ``j`` in that round and ``P[i, j] += 1 / L``. The default
  ``2.776 = t_{0.975, 4}`` is the two-sided 5% threshold for ``T = 5`` trials
  (use ``mean_ci``'s quantile for other ``T``); only the ``i > j`` direction is
  credited to ``P[i, j]``, the other to ``P[j, i]``.

  Degenerate rounds with ``std(d) == 0``: identical results (``mean(d) == 0``)
  give no penalty; a constant positive difference counts as significant
  (``t = +inf``).

  Args:
    acc: ``[m, T, L]`` accuracies, ``T >= 2``.
    alpha_t: critical t value.

  Returns:
    ``P [m, m]`` with entries in [0, 1] and a zero diagonal; ``P[i, j]`` is the
    fraction of rounds in which ``i`` beats ``j``.
  """
  x = _as_results(acc, min_trials=2)
  _, t, l = x.shape
  d = x[:, None, :, :] - x[None, :, :, :]  # [m, m, T, L]
  mu = d.mean(axis=2)  # [m, m, L]
  sd = d.std(axis=2, ddof=1)  # [m, m, L]
  with np.errstate(divide="ignore", invalid="ignore"):
    stat = np.where(sd > 0, math.sqrt(t) * mu / np.where(sd > 0, sd, 1.0),
                    np.where(mu > 0, np.inf, 0.0))
  p = (stat > alpha_t).sum(axis=-1) / float(l)
  np.fill_diagonal(p, 0.0)
  return p


def penalty_matrix_mean(acc, normalize: bool = False) -> np.ndarray:
  """Mean-based pairwise penalty matrix (BRAL-T, App. C.2).

  ``e[i, j]`` counts the rounds in which method ``i`` has a strictly higher mean
  accuracy (over trials) than method ``j``.

  Args:
    acc: ``[m, T, L]`` accuracies (``T = 1`` allowed).
    normalize: divide the counts by ``L`` (fraction of rounds, like the t-test matrix).

  Returns:
    ``e [m, m]`` float array of counts (or fractions) with a zero diagonal.
  """
  x = _as_results(acc)
  means = x.mean(axis=1)  # [m, L]
  e = (means[:, None, :] > means[None, :, :]).sum(axis=-1).astype(np.float64)
  if normalize:
    e /= float(x.shape[2])
  return e


# ----------------------------------------------------------------------------- summary statistics

# Two-sided Student-t critical values t_{(1+c)/2, df} for df = 1..30 (fallback without scipy).
_T_TABLE = {
  0.90: (6.313752, 2.919986, 2.353363, 2.131847, 2.015048, 1.943180, 1.894579, 1.859548,
         1.833113, 1.812461, 1.795885, 1.782288, 1.770933, 1.761310, 1.753050, 1.745884,
         1.739607, 1.734064, 1.729133, 1.724718, 1.720743, 1.717144, 1.713872, 1.710882,
         1.708141, 1.705618, 1.703288, 1.701131, 1.699127, 1.697261),
  0.95: (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272),
  0.99: (63.656741, 9.924843, 5.840909, 4.604095, 4.032143, 3.707428, 3.499483, 3.355387,
         3.249836, 3.169273, 3.105807, 3.054540, 3.012276, 2.976843, 2.946713, 2.920782,
         2.898231, 2.878440, 2.860935, 2.845340, 2.831360, 2.818756, 2.807336, 2.796940,
         2.787436, 2.778715, 2.770683, 2.763262, 2.756386, 2.749996),
}


def _t_critical_fallback(confidence: float, df: int) -> float:
  """Two-sided t critical value without scipy: table for df <= 30, else Cornish-Fisher."""
  for c, row in _T_TABLE.items():
    if abs(confidence - c) < 1e-12 and df <= len(row):
      return row[df - 1]
  # Cornish-Fisher expansion of the t quantile around the normal quantile z.
  z = statistics.NormalDist().inv_cdf((1.0 + confidence) / 2.0)
  v = float(df)
  return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
          + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def t_critical(confidence: float, df: int) -> float:
  """Two-sided Student-t critical value ``t_{(1+confidence)/2, df}``."""
  try:
    from scipy import stats  # pylint: disable=import-outside-toplevel
  except ImportError:  # exercised in tests by blocking the scipy import
    return _t_critical_fallback(confidence, df)
  return float(stats.t.ppf((1.0 + confidence) / 2.0, df))


def _as_sample(values, min_len: int) -> np.ndarray:
  v = np.asarray(values, dtype=np.float64).reshape(-1)
  if v.shape[0] < min_len:
    raise ValueError(f"need at least {min_len} values, got {v.shape[0]}")
  if not np.all(np.isfinite(v)):
    raise ValueError("values must be finite")
  return v


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
  """Mean and Student-t confidence-interval half-width.

  ``half_width = t_{(1+c)/2, n-1} * std(values, ddof=1) / sqrt(n)``.

  Args:
    values: ``[n]`` samples (e.g. one score per trial), ``n >= 2``.
    confidence: coverage in (0, 1).

  Returns:
    ``(mean, half_width)``.
  """
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  v = _as_sample(values, min_len=2)
  n = v.shape[0]
  se = float(v.std(ddof=1)) / math.sqrt(n)
  return float(v.mean()), t_critical(confidence, n - 1) * se


def mean_se(values) -> tuple[float, float]:
  """Mean and standard error ``std(values, ddof=1) / sqrt(n)``.

  Args:
    values: ``[n]`` samples, ``n >= 1``; a single value has standard error NaN.

  Returns:
    ``(mean, standard_error)``.
  """
  v = _as_sample(values, min_len=1)
  n = v.shape[0]
  if n == 1:
    return float(v[0]), float("nan")
  return float(v.mean()), float(v.std(ddof=1)) / math.sqrt(n)


# ----------------------------------------------------------------------------- plotting


def plot_curve(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    title: str | None = None,
) -> pathlib.Path:
  """Writes an accuracy-vs-budget plot as a PNG (Agg canvas, never opens a window).

  Args:
    curves: method name -> ``(n_labeled [r], acc [r] or [T, r])``. With several
      trials the mean is drawn with a shaded +-1 std band.
    path: output file; parent directories are created.
    title: optional axes title.

  Returns:
    The output path as a :class:`pathlib.Path`.
  """
  # A bare Figure with an explicit Agg canvas avoids pyplot and any GUI backend.
  # pylint: disable=import-outside-toplevel
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  if not curves:
    raise ValueError("curves is empty")
  out = pathlib.Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig = Figure(figsize=(6.0, 4.0), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for name, (n_labeled, acc) in curves.items():
    n = np.asarray(n_labeled, dtype=np.float64)
    a = np.asarray(acc, dtype=np.float64)
    if n.ndim != 1:
      raise ValueError(f"{name}: n_labeled must be 1-D, got shape {n.shape}")
    if a.ndim == 1:
      a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n.shape[0]:
      raise ValueError(f"{name}: acc shape {np.shape(acc)} does not match n_labeled {n.shape}")
    mu = a.mean(axis=0)
    (line,) = ax.plot(n, mu, marker="o", markersize=3, label=str(name))
    if a.shape[0] > 1:
      sd = a.std(axis=0)
      ax.fill_between(n, mu - sd, mu + sd, color=line.get_color(), alpha=0.2, linewidth=0)
  ax.set_xlabel("labeled examples")
  ax.set_ylabel("test accuracy")
  if title:
    ax.set_title(title)
  ax.grid(True, alpha=0.3)
  ax.legend(loc="lower right", fontsize="small")
  fig.tight_layout()
  fig.savefig(out, format="png")
  return out
