"""Hypergradients ``d E(w*(λ)) / dλ`` of a bilevel problem (SPEC §2.4; Franceschi et al. 2018).

The inner problem is ``w*(λ) = argmin_w L(w, λ)``, the outer objective ``E(w)`` (no direct
dependence on λ). Three estimators, chosen by ``BilevelConfig.hypergrad`` (``HYPERGRADS``):

* ``"cg"`` (AID-CG, the REC): ``v = (∇²_w L + δI)⁻¹ ∇_w E`` by K conjugate-gradient steps on
  Hessian-vector products, then ``−∂²_{λw} L · v`` (``implicit_hypergrad``).
* ``"custom_root"``: the same implicit gradient, obtained by differentiating
  ``jax.lax.custom_root`` whose tangent solve wraps the same damped CG in
  ``jax.lax.custom_linear_solve(..., symmetric=True)`` (a bare ``jax.scipy.sparse.linalg.cg``
  as tangent solve cannot be transposed under ``grad``) (``custom_root_hypergrad``).
* ``"itd"`` (iterative differentiation): reverse mode through ``T`` unrolled inner optimiser
  steps from a warm start, as a checkpointed ``lax.scan`` (``itd_hypergrad``).
"""

from collections.abc import Callable

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

__all__ = ["HYPERGRADS", "implicit_hypergrad", "implicit_solution", "custom_root_hypergrad",
           "itd_hypergrad"]

HYPERGRADS = ("cg", "custom_root", "itd")


def _tree_add(a, b, scale=1.0):
  return jax.tree.map(lambda x, y: x + scale * y, a, b)


def _damped_cg(matvec: Callable, b, cg_steps: int, damping: float):
  """``(A + δI)⁻¹ b`` by exactly ``cg_steps`` CG iterations (``tol=0``) from zero."""
  damped = lambda v: _tree_add(matvec(v), v, damping)
  return jax.scipy.sparse.linalg.cg(damped, b, maxiter=cg_steps, tol=0.0)[0]


def implicit_hypergrad(inner_loss: Callable, outer_loss: Callable, w, lam, *, cg_steps: int = 10,
                       damping: float = 1e-3):
  """Hypergradient ``d E(w*(λ)) / dλ`` at an (approximate) inner solution ``w`` (AID-CG).

  Args:
    inner_loss: ``(w, λ) -> scalar`` L of the inner problem.
    outer_loss: ``w -> scalar`` E (no direct dependence on λ).
    w: inner solution pytree.
    lam: hyperparameter pytree.
    cg_steps: CG iterations for ``(∇²_w L + δI) v = ∇_w E``.
    damping: δ.

  Returns:
    Pytree like ``lam``: ``−∂²_{λw} L · v``.
  """
  grad_e = jax.grad(outer_loss)(w)
  grad_w = lambda w_: jax.grad(inner_loss)(w_, lam)
  v = _damped_cg(lambda t: jax.jvp(grad_w, (w,), (t,))[1], grad_e, cg_steps, damping)
  cross = lambda l: sum(jax.tree.leaves(jax.tree.map(
      jnp.vdot, jax.grad(inner_loss)(w, l), v)))
  return jax.tree.map(jnp.negative, jax.grad(cross)(lam))


def implicit_solution(inner_loss: Callable, w, lam, *, cg_steps: int = 10,
                      damping: float = 1e-3):
  """``w`` as a differentiable function of ``lam``: the root of ``∇_w L(·, λ)`` found at ``w``.

  The forward value is ``w`` itself (the inner solver already ran); derivatives follow the
  implicit function theorem through ``jax.lax.custom_root``, with ``(∇²_w L + δI)⁻¹`` applied
  by ``cg_steps`` CG iterations inside ``jax.lax.custom_linear_solve`` (symmetric, so reverse
  mode reuses the same solve) on the flattened parameter vector.

  Args:
    inner_loss: ``(w, λ) -> scalar`` L.
    w: inner solution pytree (not differentiated).
    lam: hyperparameter pytree (differentiated).
    cg_steps: K.
    damping: δ.

  Returns:
    Pytree like ``w`` (equal to it in value).
  """
  def tangent_solve(matvec, rhs):
    # custom_linear_solve transposes only if every leaf of its right-hand side is linear in
    # the tangents (jax-ml/jax#10929); leaves λ does not reach (biases) are constant zeros.
    # One flat vector is linear as soon as any leaf is.
    flat, unravel = jax.flatten_util.ravel_pytree(rhs)
    flat_mv = lambda v: jax.flatten_util.ravel_pytree(matvec(unravel(v)))[0]
    solve = lambda mv, b: _damped_cg(mv, b, cg_steps, damping)
    return unravel(jax.lax.custom_linear_solve(flat_mv, flat, solve, symmetric=True))

  return jax.lax.custom_root(lambda w_: jax.grad(inner_loss)(w_, lam), w,
                             lambda _, guess: guess, tangent_solve)


def custom_root_hypergrad(inner_loss: Callable, outer_loss: Callable, w, lam, *,
                          cg_steps: int = 10, damping: float = 1e-3):
  """``implicit_hypergrad`` obtained as ``grad`` of ``E(implicit_solution(λ))``.

  Same arguments and result as ``implicit_hypergrad`` (equal up to rounding).
  """
  solution = lambda l: implicit_solution(inner_loss, w, l, cg_steps=cg_steps, damping=damping)
  return jax.grad(lambda l: outer_loss(solution(l)))(lam)


def itd_hypergrad(inner_loss: Callable, outer_loss: Callable, w, lam,
                  optimizer: optax.GradientTransformation, steps: int, opt_state=None):
  """Iterative differentiation: ``d E(w_T(λ)) / dλ`` through ``T`` unrolled optimiser steps.

  ``w_{t+1} = w_t + optimizer.update(∇_w L(w_t, λ), s_t, w_t)`` from the warm start
  ``(w_0, s_0) = (w, opt_state)``, run as a ``lax.scan`` whose body is rematerialised
  (``jax.checkpoint``), so memory grows with ``T`` only by the carried ``(w_t, s_t)``. The warm
  start is treated as a constant (truncated ITD). Adam needs ``eps_root > 0`` here: its
  ``sqrt(ν)`` has an infinite derivative at ``ν = 0`` (any parameter with an exactly zero
  gradient), which turns into NaN.

  Args:
    inner_loss: ``(w, λ) -> scalar`` L.
    outer_loss: ``w -> scalar`` E.
    w: warm-start pytree ``w_0``.
    lam: hyperparameter pytree.
    optimizer: inner optimiser (differentiable update).
    steps: ``T``.
    opt_state: ``s_0`` (default ``optimizer.init(w)``).

  Returns:
    ``(hypergrad like lam, w_T, s_T, E(w_T))``.
  """
  opt_state = optimizer.init(w) if opt_state is None else opt_state

  def unrolled(l):
    def step(carry, _):
      p, s = carry
      upd, s = optimizer.update(jax.grad(inner_loss)(p, l), s, p)
      return (optax.apply_updates(p, upd), s), None

    (p, s), _ = jax.lax.scan(jax.checkpoint(step), (w, opt_state), None, length=steps)
    return outer_loss(p), (p, s)

  (e, (w_t, s_t)), hg = jax.value_and_grad(unrolled, has_aux=True)(lam)
  return hg, w_t, s_t, e
