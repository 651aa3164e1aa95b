"""BAIT (Ash et al., NeurIPS 2021): greedy forward-backward selection on Fisher information.

BASELINES.md §7. With ``p = softmax(z(x))`` and ``h = h(x)`` the penultimate embedding, each
point's last-layer Fisher factor is ``V_x = Q_x ⊗ hᵀ`` (``[K, K·D]``, class-major) with
``Q_x = diag(√p)(I − 1pᵀ)``, so ``I(x) = V_xᵀV_x = (diag(p) − ppᵀ) ⊗ hhᵀ``. ``F`` is the mean of
``I(x)`` over the whole pool, ``F_L`` over the labeled rows. As the reference
(``JordanAsh/badge`` ``query_strategies/bait_sampling.py``): ``A = (λI + n_L/(n_L+B)·F_L)⁻¹``,
every candidate factor scaled by ``√(B/(n_L+B))``; ``2B`` forward picks of the largest
``tr(V A F A Vᵀ (I + V A Vᵀ)⁻¹)`` with the Woodbury update of ``A``, then ``B`` backward removals
of the largest ``tr(V A F A Vᵀ (−I + V A Vᵀ)⁻¹)`` (the reference's ``argmin(−trace)``).

**Exact incremental form (§7.5).** The reference materialises ``[n_U, K, K·D]`` tensors and
multiplies them by ``K·D × K·D`` matrices at every step. Here every row keeps the ``K × K``
matrices ``P_x = V_x A V_xᵀ`` and ``R_x = V_x A F A V_xᵀ``; committing ``s`` with
``C = (±I + P_s)⁻¹``, ``U = A V_sᵀ``, ``W = F U``, ``S = UᵀW``, ``a_x = V_x U``,
``b_x = V_x A W`` gives ``P_x ← P_x − a C aᵀ``, ``R_x ← R_x − a C bᵀ − b C aᵀ + a C S C aᵀ`` and
``A ← A − U C Uᵀ`` — the same matrices, so the same picks, at ``O(n K² D)`` per step (``a_x``
and ``b_x`` through ``V_x = Q_x (I ⊗ h_xᵀ)``) instead of ``O(n K (KD)²)``. The initial
``P_x, R_x = Q_x H_x(·) Q_xᵀ`` with ``H_x(M)_ab = h_xᵀ M_ab h_x`` over the ``D × D`` blocks cost
``O(n K² D²)`` once per round, chunked. Memory: ``3 (KD)²`` floats for ``A, F, AFA`` plus
``O(n K²)``; never ``[n, K, KD]``. ``A``'s first inverse is taken in float64 on the host
(§7.7); the rest runs in float32 at ``HIGHEST`` matmul precision.

Deviations: ties of the forward argmax go to the lowest row (the reference's
``argsort(...)[::-1]`` takes the highest); with fewer than ``2B`` unlabeled rows all of them are
forward-picked (the reference would fail).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jal import parallel
from jal.strategies.base import Context, Strategy
from jal.train import predict

__all__ = ["bait_strategy", "bait_select", "fisher_factor"]

_HI = lax.Precision.HIGHEST
_ein = functools.partial(jnp.einsum, precision=_HI)


def fisher_factor(probs: jax.Array) -> jax.Array:
  """``Q = diag(√p)(I − 1pᵀ)``: ``[n, K, K]`` with ``V_x = Q_x ⊗ h_xᵀ`` (row ``c`` of ``V_x`` is
  ``√p_c (e_c − p) ⊗ h``, the reference's ``get_exp_grad_embedding``)."""
  k = probs.shape[-1]
  return jnp.sqrt(probs)[:, :, None] * (jnp.eye(k, dtype=probs.dtype)[None] - probs[:, None, :])


def _chunks(arrays, chunk):
  """Rows padded (with zeros) to a multiple of ``chunk`` and split ``[n_chunks, chunk, ...]``."""
  n = arrays[0].shape[0]
  pad = -n % chunk
  return tuple(jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(-1, chunk, *a.shape[1:])
               for a in arrays)


@functools.partial(jax.jit, static_argnames=("chunk",))
def _fishers(probs, h, weights, chunk):
  """``Σ_x w_x I(x)`` for every weight column: ``[W, KD, KD]``, a scan over row chunks."""
  n, k = probs.shape
  d = h.shape[1]

  def body(acc, c):
    p, hc, w = c
    g = jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :]  # [c, K, K]
    hh = (hc[:, :, None] * hc[:, None, :]).reshape(-1, d * d)
    gw = g.reshape(-1, 1, k * k) * w[:, :, None]  # [c, W, K²]
    return acc + _ein("cwk,cl->wkl", gw, hh), None

  acc = jnp.zeros((weights.shape[1], k * k, d * d), probs.dtype)
  acc, _ = lax.scan(body, acc, _chunks((probs, h, weights), chunk))
  f = acc.reshape(-1, k, k, d, d).transpose(0, 1, 3, 2, 4)
  return f.reshape(-1, k * d, k * d)


def _hform(h, m4t, k):
  """``H(M)_ab = hᵀ M_ab h`` for ``h [c, D]``; ``m4t`` is ``M`` as ``[D, K·K·D]`` (row ``d``,
  column ``(a, b, e)``)."""
  t = jnp.matmul(h, m4t, precision=_HI).reshape(h.shape[0], k, k, -1)
  return _ein("cabe,ce->cab", t, h)


def _as_m4t(m, k, d):
  return m.reshape(k, d, k, d).transpose(1, 0, 2, 3).reshape(d, k * k * d)


def _times_v(q, h, m, k, d):
  """``V_x M`` for ``M [KD, K]``: ``Q_x (I ⊗ h_xᵀ) M``, ``[n, K, K]``."""
  t = jnp.matmul(h, m.reshape(k, d, k).transpose(1, 0, 2).reshape(d, k * k),
                 precision=_HI).reshape(-1, k, k)
  return _ein("nca,nak->nck", q, t)


def _trace_score(p, r, sign):
  k = p.shape[-1]
  x = jnp.linalg.solve(sign * jnp.eye(k, dtype=p.dtype)[None] + p, r)
  t = jnp.trace(x, axis1=1, axis2=2)
  return jnp.where(jnp.isnan(t), -jnp.inf, t)


def _commit(a_mat, f, q_s, h_s, p_s, q, h, p, r, sign, k, d):
  """Adds (``sign = 1``) or removes (``−1``) row ``s``: updated ``A`` and every row's P, R."""
  c = jnp.linalg.inv(sign * jnp.eye(k, dtype=p.dtype) + p_s)
  c = 0.5 * (c + c.T)
  v_s = (q_s[:, :, None] * h_s[None, None, :]).reshape(k, k * d)
  u = jnp.matmul(a_mat, v_s.T, precision=_HI)  # [KD, K]
  w = jnp.matmul(f, u, precision=_HI)
  s = jnp.matmul(u.T, w, precision=_HI)
  ax = _times_v(q, h, u, k, d)
  bx = _times_v(q, h, jnp.matmul(a_mat, w, precision=_HI), k, d)
  ac = _ein("nck,kl->ncl", ax, c)
  acb = _ein("ncl,nml->ncm", ac, bx)
  p = p - _ein("ncl,nml->ncm", ac, ax)
  r = r - acb - jnp.swapaxes(acb, 1, 2) + _ein("ncl,lj,nmj->ncm", ac, s, ac)
  a_mat = a_mat - _ein("ik,kl,jl->ij", u, c, u)
  return a_mat, p, r


@functools.partial(jax.jit, static_argnames=("budget", "forward", "chunk"))
def _select(probs, h, labeled, a0, f, scale, budget, forward, chunk):
  n, k = probs.shape
  d = h.shape[1]
  q = fisher_factor(probs) * scale
  afa = jnp.matmul(a0, jnp.matmul(f, a0, precision=_HI), precision=_HI)
  afa = 0.5 * (afa + afa.T)
  a4t, afa4t = _as_m4t(a0, k, d), _as_m4t(afa, k, d)

  def init_pr(c):
    qc, hc = c
    pr = jnp.stack([_hform(hc, a4t, k), _hform(hc, afa4t, k)], 1)  # [c, 2, K, K]
    return _ein("nca,nwab,ndb->nwcd", qc, pr, qc)

  pr = parallel.chunked_map(init_pr, (q, h), chunk)
  p, r = pr[:, 0], pr[:, 1]

  def fwd(i, carry):
    a_mat, p, r, avail, picks, gains = carry
    t = jnp.where(avail, _trace_score(p, r, 1.0), -jnp.inf)
    s = jnp.argmax(t).astype(jnp.int32)
    a_mat, p, r = _commit(a_mat, f, q[s], h[s], p[s], q, h, p, r, 1.0, k, d)
    return a_mat, p, r, avail.at[s].set(False), picks.at[i].set(s), gains.at[i].set(t[s])

  init = (a0, p, r, ~labeled, jnp.zeros((forward,), jnp.int32), jnp.zeros((forward,), p.dtype))
  a_mat, p, r, _, picks, gains = lax.fori_loop(0, forward, fwd, init)
  qs, hs, ps, rs = q[picks], h[picks], p[picks], r[picks]

  def back(i, carry):
    a_mat, ps, rs, alive, removed = carry
    t = jnp.where(alive, _trace_score(ps, rs, -1.0), -jnp.inf)
    s = jnp.argmax(t).astype(jnp.int32)
    a_mat, ps, rs = _commit(a_mat, f, qs[s], hs[s], ps[s], qs, hs, ps, rs, -1.0, k, d)
    return a_mat, ps, rs, alive.at[s].set(False), removed.at[i].set(s)

  alive, removed = jnp.ones((forward,), bool), jnp.zeros((forward - budget,), jnp.int32)
  if forward > budget:  # static: with nothing to prune the body cannot even be traced
    init = (a_mat, ps, rs, alive, removed)
    _, _, _, alive, removed = lax.fori_loop(0, forward - budget, back, init)
  return picks, gains, alive, removed


def bait_select(probs, emb, labeled, budget: int, *, lam: float = 1.0,
                oversample: int = 2, chunk_rows: int | None = None) -> dict:
  """BAIT's selection (forward ``oversample·B`` picks, backward pruning to ``B``).

  Args:
    probs: ``[n, K]`` class probabilities of the whole pool (labeled rows included).
    emb: ``[n, D]`` penultimate embeddings.
    labeled: ``[n]`` bool mask of the labeled rows.
    budget: ``B``.
    lam: ridge ``λ`` (reference: 1; 1e-2 on CIFAR).
    oversample: forward picks per query point (reference: 2); capped at the unlabeled count.
    chunk_rows: rows per chunk of the ``O(n K² D²)`` passes (default: ``≈ 2²³ / (K² D)``
      floats per intermediate).

  Returns:
    ``{"selected": [B] rows in forward order, "forward": [m] forward picks in order,
    "gains": [m] forward scores, "removed": [m − B] rows removed, in order}`` (NumPy).
  """
  probs = jnp.asarray(probs, jnp.float32)
  h = jnp.asarray(emb, jnp.float32)
  labeled = np.asarray(labeled, bool)
  n, k = probs.shape
  d = h.shape[1]
  n_l = int(labeled.sum())
  forward = min(int(oversample) * int(budget), n - n_l)
  if not 1 <= budget <= forward:
    raise ValueError(f"need 1 <= budget <= {n - n_l} unlabeled rows, got {budget}")
  chunk = int(chunk_rows or max(1, min(n, 2 ** 23 // (k * k * d))))
  weights = np.stack([np.full(n, 1.0 / n), labeled / max(n_l, 1)], 1).astype(np.float32)
  f, f_l = _fishers(probs, h, jnp.asarray(weights), min(chunk, 2 ** 24 // (d * d) or 1))
  m0 = lam * np.eye(k * d) + (n_l / (n_l + budget)) * np.asarray(f_l, np.float64)
  a0 = np.linalg.inv(0.5 * (m0 + m0.T))
  scale = np.float32(np.sqrt(budget / (n_l + budget)))
  picks, gains, alive, removed = _select(probs, h, jnp.asarray(labeled),
                                         jnp.asarray(a0, jnp.float32), f, scale, int(budget),
                                         forward, chunk)
  picks, alive, removed = np.asarray(picks), np.asarray(alive), np.asarray(removed)
  return {"selected": picks[alive], "forward": picks, "gains": np.asarray(gains),
          "removed": picks[removed]}


def bait_strategy(lam: float = 1.0, oversample: int = 2) -> Strategy:
  """BAIT with the exact incremental selection (module docstring).

  Args:
    lam: ridge ``λ`` of ``(λI + …)⁻¹``; the reference uses 1, and 1e-2 on CIFAR.
    oversample: forward picks per query point before pruning (reference: 2).

  Raises:
    ValueError: for ``lam <= 0`` (the Fisher inverse needs a positive ridge) or
      ``oversample < 1``.
  """
  if not lam > 0:
    raise ValueError(f"lam must be > 0 (the ridge of BAIT's Fisher inverse), got {lam}")
  if oversample < 1:
    raise ValueError(f"oversample must be >= 1, got {oversample}")

  def score(key, ctx: Context):
    logits, emb = predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)
    n = ctx.labeled.shape[0]
    return jax.nn.softmax(logits[:n], -1), emb[:n]

  def pick(key, ctx: Context, aux, budget):
    out = bait_select(aux[0], aux[1], ctx.labeled, budget, lam=lam, oversample=oversample)
    return out["selected"], {"forward_picks": int(out["forward"].size)}

  return Strategy("bait", score, pick)
