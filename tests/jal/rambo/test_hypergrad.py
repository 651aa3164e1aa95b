"""Hypergradient variants of RAMBO's bilevel training: AID-CG, custom_root and ITD (SPEC §2.4)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jal.rambo import bilevel, hypergrad
from jal.rambo.utility_model import make_set_net


def _ridge():
  """Ridge regression with an unpenalised bias: L, E and the closed-form ``w*(λ)`` (float64)."""
  rng = np.random.default_rng(0)
  x, y = jnp.asarray(rng.normal(size=(12, 4))), jnp.asarray(rng.normal(size=12))
  xv, yv = jnp.asarray(rng.normal(size=(9, 4))), jnp.asarray(rng.normal(size=9))

  def inner(p, lam):
    r = x @ p["w"][:, 0] + p["b"][0] - y
    return 0.5 * jnp.sum(r * r) + bilevel.regularizer(p, lam)

  def outer(p):
    r = xv @ p["w"][:, 0] + p["b"][0] - yv
    return 0.5 * jnp.sum(r * r)

  def solve(lam):
    a = jnp.concatenate([x, jnp.ones((12, 1))], 1)
    reg = jnp.diag(jnp.concatenate([jnp.full(4, jnp.exp(lam["w"])), jnp.zeros(1)]))
    sol = jnp.linalg.solve(a.T @ a + reg, a.T @ y)
    return {"w": sol[:4, None], "b": sol[4:]}

  return inner, outer, solve, {"w": jnp.asarray(0.2), "b": jnp.asarray(0.0)}


def _finite_difference(outer, solve, lam, h=1e-5):
  value = jax.jit(lambda t: outer(solve({**lam, "w": t})))
  return (value(lam["w"] + h) - value(lam["w"] - h)) / (2 * h)


def test_hypergradient_matches_finite_differences():
  with jax.enable_x64(True):
    inner, outer, solve, lam = _ridge()
    hg = jax.jit(lambda lam: bilevel.implicit_hypergrad(
        inner, outer, solve(lam), lam, cg_steps=20, damping=0.0))(lam)
    np.testing.assert_allclose(hg["w"], _finite_difference(outer, solve, lam), rtol=1e-3)
    assert float(hg["b"]) == 0.0  # biases are not regularised


@pytest.mark.parametrize("damping", [0.0, 1e-3])
def test_custom_root_equals_cg_and_finite_differences(damping):
  with jax.enable_x64(True):
    inner, outer, solve, lam = _ridge()
    kw = dict(cg_steps=20, damping=damping)
    cg = jax.jit(lambda l: hypergrad.implicit_hypergrad(inner, outer, solve(l), l, **kw))(lam)
    root = jax.jit(lambda l: hypergrad.custom_root_hypergrad(inner, outer, solve(l), l, **kw))(
        lam)
    np.testing.assert_allclose(root["w"], cg["w"], rtol=1e-4)
    assert float(root["b"]) == 0.0
    fd = _finite_difference(outer, solve, lam)
    np.testing.assert_allclose(root["w"], fd, rtol=1e-3)
    np.testing.assert_allclose(cg["w"], fd, rtol=1e-3)
    # The forward value of implicit_solution is the given w.
    w = solve(lam)
    same = hypergrad.implicit_solution(inner, w, lam, **kw)
    np.testing.assert_array_equal(same["w"], w["w"])


def test_itd_one_gradient_step_by_hand():
  # w₁ = w₀ − η(∇ℓ(w₀) + e^λ w₀) on the weights, so dw₁/dλ = −η e^λ w₀ and
  # dE(w₁)/dλ = ⟨∇E(w₁), −η e^λ w₀⟩.
  with jax.enable_x64(True):
    inner, outer, _, lam = _ridge()
    w0 = {"w": jnp.asarray([[0.3], [-0.2], [0.5], [0.1]]), "b": jnp.asarray([0.4])}
    eta = 0.05
    hg, w1, _, e = hypergrad.itd_hypergrad(inner, outer, w0, lam, optax.sgd(eta), 1)
    g = jax.grad(inner)(w0, lam)
    want_w1 = jax.tree.map(lambda p, q: p - eta * q, w0, g)
    np.testing.assert_allclose(w1["w"], want_w1["w"], rtol=1e-12)
    want = jnp.vdot(jax.grad(outer)(want_w1)["w"], -eta * jnp.exp(lam["w"]) * w0["w"])
    np.testing.assert_allclose(hg["w"], want, rtol=1e-10)
    np.testing.assert_allclose(e, outer(want_w1), rtol=1e-12)
    assert float(hg["b"]) == 0.0


def test_itd_of_converged_gradient_descent_approaches_implicit_gradient():
  # Gradient descent with η = 1/24 contracts the error by 1 − λ_min/λ_max ≈ 0.90 per step on
  # this problem (Hessian eigenvalues 2.5 … 24.0), and the unrolled derivative converges at
  # the same linear rate (× T), so T = 400 steps leave ≈ 400 · 0.9⁴⁰⁰ ≈ 1e-16 relative error.
  with jax.enable_x64(True):
    inner, outer, solve, lam = _ridge()
    exact = hypergrad.implicit_hypergrad(inner, outer, solve(lam), lam, cg_steps=20, damping=0.0)
    w0 = jax.tree.map(jnp.zeros_like, solve(lam))
    itd = jax.jit(lambda t: hypergrad.itd_hypergrad(inner, outer, w0, lam, optax.sgd(1 / 24),
                                                    t)[0], static_argnums=0)
    np.testing.assert_allclose(itd(400)["w"], exact["w"], rtol=1e-6)
    # A short unroll is a different (truncated) estimator.
    assert abs(float(itd(3)["w"]) - float(exact["w"])) > 1e-2 * abs(float(exact["w"]))


def test_bilevel_config_rejects_unknown_hypergrad():
  with pytest.raises(ValueError, match="hypergrad"):
    bilevel.BilevelConfig(hypergrad="newton")


def _tiny_problem():
  sn = make_set_net((3, 3, 1))
  pool = jax.random.normal(jax.random.key(0), (10, 3, 3, 1))
  rng = np.random.default_rng(1)
  m1 = jnp.asarray(np.arange(10)[None] < rng.integers(2, 10, (6, 1)))
  m2 = jnp.asarray(rng.random((6, 10)) < 0.5)
  d = bilevel.PairData(m1, m2, jnp.asarray(rng.random(6), jnp.float32),
                       jnp.asarray(rng.random(6), jnp.float32), jnp.ones(6), jnp.ones(6),
                       jnp.ones(6))
  return sn, sn.init(jax.random.key(2)), pool, d


@pytest.mark.slow  # ~40 s: a bilevel training per hypergradient method
def test_train_bilevel_runs_with_each_hypergrad():
  sn, params, pool, d = _tiny_problem()
  lams = {}
  for name in hypergrad.HYPERGRADS:
    # λ_OT = 0: the OT head gets exactly zero gradients (ITD must stay finite through Adam).
    cfg = bilevel.BilevelConfig(outer_steps=2, inner_steps=3, cg_steps=2, lam_ot=0.0,
                                outer_lr=0.1, hypergrad=name)
    p, lam, losses = bilevel.train_bilevel(sn, cfg, params, pool, d)
    assert losses.shape == (2,) and bool(jnp.all(jnp.isfinite(losses)))
    leaves = jax.tree.leaves(lam)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves + jax.tree.leaves(p))
    assert any(abs(float(leaf) - cfg.lam_init) > 1e-3 for leaf in leaves)  # λ moved
    lams[name] = leaves
  for a, b in zip(lams["cg"], lams["custom_root"]):
    np.testing.assert_allclose(a, b, rtol=1e-4)
