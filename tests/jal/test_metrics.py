"""Tests for jal.metrics: AUBC, F-acc, penalty matrices, confidence intervals, plots."""

import math

import numpy as np
import pytest

from jal import metrics

# ----------------------------------------------------------------------------- AUBC


def test_aubc_hand_computed_divisible():
  # Q = 200: (100 * 0.55 + 100 * 0.7) / 200 = 0.625.
  assert metrics.aubc([0.5, 0.6, 0.8], 100) == pytest.approx(0.625, abs=1e-12)
  assert metrics.aubc([0.5, 0.6, 0.8], 100, quota=200) == pytest.approx(0.625, abs=1e-12)


def test_aubc_hand_computed_non_divisible_quota():
  # Q = 250, b = 100: widths 100, 100, 50.
  accs = [0.4, 0.6, 0.7, 0.9]
  expected = (100 * 0.5 + 100 * 0.65 + 50 * 0.8) / 250  # = 155 / 250 = 0.62
  assert expected == pytest.approx(0.62, abs=1e-12)
  assert metrics.aubc(accs, 100, quota=250) == pytest.approx(expected, abs=1e-12)
  # Treating the last round as a full one would give a different number.
  assert metrics.aubc(accs, 100) == pytest.approx((50 + 65 + 80) / 300, abs=1e-12)
  assert abs(metrics.aubc(accs, 100) - expected) > 1e-3


@pytest.mark.parametrize("a", [0.0, 0.37, 1.0])
@pytest.mark.parametrize("n, b, q", [(2, 10, None), (6, 7, None), (4, 100, 250), (5, 3, 10)])
def test_aubc_constant_curve_equals_constant(a, n, b, q):
  assert metrics.aubc([a] * n, b, quota=q) == pytest.approx(a, abs=1e-12)


def test_aubc_monotone_in_accuracies():
  low = metrics.aubc([0.5, 0.6, 0.7], 50)
  high = metrics.aubc([0.5, 0.65, 0.7], 50)
  assert high - low == pytest.approx(0.05 / 2, abs=1e-12)  # (0.05 * 50/2 * 2) / 100


def test_aubc_from_counts_agrees_with_aubc():
  rng = np.random.default_rng(0)
  for _ in range(20):
    b = int(rng.integers(1, 200))
    r = int(rng.integers(1, 12))
    accs = rng.uniform(0.1, 0.99, size=r + 1)
    n0 = int(rng.integers(0, 500))
    counts = n0 + b * np.arange(r + 1)
    assert metrics.aubc_from_counts(counts, accs) == pytest.approx(
      metrics.aubc(accs, b), abs=1e-12)
    # Non-divisible quota: the last round only queries q % b labels.
    if r >= 2 and b >= 2:
      rem = int(rng.integers(1, b))
      q = b * (r - 1) + rem
      counts_q = counts.copy()
      counts_q[-1] = n0 + q
      assert metrics.aubc_from_counts(counts_q, accs) == pytest.approx(
        metrics.aubc(accs, b, quota=q), abs=1e-12)


def test_aubc_from_counts_irregular_hand_computed():
  # queried 0, 10, 40: (10 * 0.5 + 30 * 0.8) / 40 = 29 / 40.
  got = metrics.aubc_from_counts([20, 30, 60], [0.4, 0.6, 1.0])
  assert got == pytest.approx(29 / 40, abs=1e-12)


@pytest.mark.parametrize(
  "accs, b, q, match",
  [
    ([0.5], 100, None, "at least 2"),
    ([], 100, None, "at least 2"),
    ([0.5, 1.2], 100, None, r"\[0, 1\]"),
    ([0.5, -0.1], 100, None, r"\[0, 1\]"),
    ([0.5, float("nan")], 100, None, "finite"),
    ([0.5, float("inf")], 100, None, "finite"),
    ([0.5, 0.6], 0, None, "budget_per_round"),
    ([0.5, 0.6], -5, None, "budget_per_round"),
    ([0.5, 0.6], 2.5, None, "budget_per_round"),
    ([0.5, 0.6], 100, 0, "quota"),
    ([0.5, 0.6, 0.7], 100, 250, "ceil"),  # needs 4 points
    ([0.5, 0.6, 0.7, 0.8], 100, 200, "ceil"),  # needs 3 points
    ([[0.5, 0.6]], 100, None, "1-D"),
  ],
)
def test_aubc_rejects_bad_inputs(accs, b, q, match):
  with pytest.raises(ValueError, match=match):
    metrics.aubc(accs, b, quota=q)


@pytest.mark.parametrize(
  "counts, accs",
  [([0, 10], [0.5]), ([0, 10, 10], [0.5, 0.6, 0.7]), ([10, 0], [0.5, 0.6]), ([0], [0.5])],
)
def test_aubc_from_counts_rejects_bad_inputs(counts, accs):
  with pytest.raises(ValueError):
    metrics.aubc_from_counts(counts, accs)


def test_round_aubc_and_f_acc():
  assert metrics.round_aubc(0.62549) == 0.625
  assert metrics.round_aubc(0.6256) == 0.626
  assert metrics.f_acc([0.5, 0.6, 0.83]) == pytest.approx(0.83, abs=1e-15)
  assert metrics.f_acc([0.7]) == pytest.approx(0.7, abs=1e-15)
  with pytest.raises(ValueError):
    metrics.f_acc([])


# ----------------------------------------------------------------------------- penalty matrices


def _synthetic(rng, m=3, t=5, l=10):
  base = rng.uniform(0.5, 0.8, size=(1, t, l))  # shared per trial/round difficulty
  return np.repeat(base, m, axis=0)


def test_penalty_ttest_dominant_method():
  rng = np.random.default_rng(1)
  acc = _synthetic(rng, m=2)
  acc[0] += 0.05 + rng.normal(0.0, 0.005, size=acc[0].shape)  # always better by a margin
  acc[1] += rng.normal(0.0, 0.005, size=acc[1].shape)
  p = metrics.penalty_matrix_ttest(acc)
  assert p.shape == (2, 2)
  np.testing.assert_allclose(p, [[0.0, 1.0], [0.0, 0.0]], atol=1e-12)


def test_penalty_ttest_identical_and_constant_margin():
  rng = np.random.default_rng(2)
  acc = _synthetic(rng, m=3)
  acc[2] += 0.03  # constant positive difference: std(d) ~ 0, counts as significant
  p = metrics.penalty_matrix_ttest(acc)
  np.testing.assert_allclose(np.diag(p), 0.0, atol=0)
  assert p[0, 1] == 0.0 and p[1, 0] == 0.0  # identical methods
  assert p[2, 0] == pytest.approx(1.0, abs=1e-12)
  assert p[2, 1] == pytest.approx(1.0, abs=1e-12)
  assert p[0, 2] == 0.0 and p[1, 2] == 0.0


def test_penalty_ttest_partial_rounds_and_threshold():
  # 4 rounds; method 0 better by a clear margin only in rounds 0 and 2.
  d_big = np.array([0.10, 0.11, 0.09, 0.10, 0.10])  # t ~ 31.6
  d_noisy = np.array([0.05, -0.04, 0.03, -0.02, 0.01])  # t ~ 0.33
  acc = np.full((2, 5, 4), 0.5)
  acc[0, :, 0] += d_big
  acc[0, :, 1] += d_noisy
  acc[0, :, 2] += d_big
  acc[0, :, 3] -= d_big  # method 1 better in round 3
  p = metrics.penalty_matrix_ttest(acc)
  np.testing.assert_allclose(p, [[0.0, 0.5], [0.25, 0.0]], atol=1e-12)
  # The hand-computed statistic of the noisy round is below any sensible threshold.
  t_noisy = math.sqrt(5) * d_noisy.mean() / d_noisy.std(ddof=1)
  assert 0.0 < t_noisy < 1.0
  p_low = metrics.penalty_matrix_ttest(acc, alpha_t=0.1 * t_noisy)
  assert p_low[0, 1] == pytest.approx(0.75, abs=1e-12)


def test_penalty_ttest_rejects_bad_inputs():
  with pytest.raises(ValueError, match="trials"):
    metrics.penalty_matrix_ttest(np.zeros((2, 1, 3)))
  with pytest.raises(ValueError, match="shaped"):
    metrics.penalty_matrix_ttest(np.zeros((2, 3)))
  with pytest.raises(ValueError, match="finite"):
    metrics.penalty_matrix_ttest(np.full((2, 3, 3), np.nan))


def test_penalty_mean_counts_strict_wins():
  acc = np.zeros((3, 2, 4))
  acc[0] = [[0.6, 0.5, 0.7, 0.5], [0.6, 0.5, 0.7, 0.5]]  # means 0.6 0.5 0.7 0.5
  acc[1] = [[0.5, 0.5, 0.8, 0.4], [0.5, 0.5, 0.6, 0.4]]  # means 0.5 0.5 0.7 0.4
  acc[2] = acc[0]  # identical to method 0
  e = metrics.penalty_matrix_mean(acc)
  expected = np.array([[0, 2, 0], [0, 0, 0], [0, 2, 0]], dtype=np.float64)
  np.testing.assert_array_equal(e, expected)
  np.testing.assert_allclose(metrics.penalty_matrix_mean(acc, normalize=True), expected / 4,
                             atol=1e-15)


def test_penalty_mean_dominant_method_single_trial():
  acc = np.stack([np.full((1, 6), 0.9), np.full((1, 6), 0.8)])
  np.testing.assert_array_equal(metrics.penalty_matrix_mean(acc), [[0, 6], [0, 0]])


# ----------------------------------------------------------------------------- mean_ci / mean_se

T_0975_2 = 4.302652729749462  # t_{0.975, 2} (scipy.stats.t.ppf)


def test_mean_ci_hand_computed():
  mean, hw = metrics.mean_ci([1.0, 2.0, 3.0])
  assert mean == pytest.approx(2.0, abs=1e-12)
  assert hw == pytest.approx(T_0975_2 / math.sqrt(3), rel=1e-9)


def test_mean_ci_fallback_without_scipy(monkeypatch):
  import builtins

  real_import = builtins.__import__

  def fake_import(name, *args, **kwargs):
    if name == "scipy" or name.startswith("scipy."):
      raise ImportError("no scipy")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", fake_import)
  mean, hw = metrics.mean_ci([1.0, 2.0, 3.0])
  assert mean == pytest.approx(2.0, abs=1e-12)
  assert hw == pytest.approx(T_0975_2 / math.sqrt(3), rel=1e-6)
  # Beyond the table (df = 59): Cornish-Fisher vs t_{0.975, 59} = 2.000995...
  vals = np.arange(60, dtype=np.float64)
  _, hw = metrics.mean_ci(vals)
  se = vals.std(ddof=1) / math.sqrt(60)
  assert hw / se == pytest.approx(2.0009953, rel=1e-4)


def test_mean_ci_width_grows_with_confidence_and_rejects_bad():
  vals = [0.61, 0.64, 0.60, 0.66, 0.63]
  _, w90 = metrics.mean_ci(vals, 0.90)
  _, w95 = metrics.mean_ci(vals, 0.95)
  _, w99 = metrics.mean_ci(vals, 0.99)
  assert w90 < w95 < w99
  se = np.std(vals, ddof=1) / math.sqrt(5)
  assert w95 / se == pytest.approx(2.7764451051977934, rel=1e-9)
  with pytest.raises(ValueError):
    metrics.mean_ci([1.0])
  with pytest.raises(ValueError):
    metrics.mean_ci([1.0, 2.0], confidence=1.5)


def test_mean_se():
  mean, se = metrics.mean_se([1.0, 2.0, 3.0, 6.0])
  assert mean == pytest.approx(3.0, abs=1e-12)
  # sample var = (4 + 1 + 0 + 9) / 3 = 14/3
  assert se == pytest.approx(math.sqrt(14 / 3) / 2, abs=1e-12)
  m1, se1 = metrics.mean_se([0.4])
  assert m1 == pytest.approx(0.4) and math.isnan(se1)
  with pytest.raises(ValueError):
    metrics.mean_se([])


# ----------------------------------------------------------------------------- plotting


def test_plot_curve_writes_png(tmp_path):
  rng = np.random.default_rng(3)
  n = np.array([100, 200, 300, 400])
  curves = {
    "random": (n, np.array([0.5, 0.6, 0.65, 0.7])),
    "badge": (n, np.clip(np.array([0.5, 0.65, 0.72, 0.78]) + rng.normal(0, 0.01, (5, 4)), 0, 1)),
  }
  out = metrics.plot_curve(curves, tmp_path / "sub" / "curve.png", title="MNIST")
  assert str(out) == str(tmp_path / "sub" / "curve.png")
  data = (tmp_path / "sub" / "curve.png").read_bytes()
  assert len(data) > 1000
  assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_curve_rejects_mismatched_shapes(tmp_path):
  with pytest.raises(ValueError):
    metrics.plot_curve({"x": ([1, 2, 3], [0.5, 0.6])}, tmp_path / "bad.png")
  with pytest.raises(ValueError):
    metrics.plot_curve({}, tmp_path / "empty.png")
