"""SIMILAR (Kothawade et al., NeurIPS 2021): facility-location mutual information with a query
set, as DISTIL's ``SMI`` runs it with submodlib's functions (BASELINES.md §6).

Rows are compared through their last-layer gradient embeddings ``g = [a ; vec(a hᵀ)]``
(unlabeled rows with the predicted label, query rows with their true label) and the kernel
``s(i, j) = (cos(g_i, g_j) + 1) / 2`` (a zero vector has cos 0, as sklearn's), computed in
factorised form (``⟨g_i, g_j⟩ = ⟨a_i, a_j⟩ (1 + ⟨h_i, h_j⟩)``) one chunk of rows at a time.
With ``A`` the selected rows and ``Q`` the query set:

* ``flqmi`` (DISTIL ``'fl2mi'``, submodlib ``FacilityLocationVariantMutualInformation``):
  ``I(A; Q) = Σ_{q∈Q} max_{i∈A} s_iq + η Σ_{i∈A} max_{q∈Q} s_iq`` — kernel ``[n, |Q|]``.
* ``flvmi`` (DISTIL ``'fl1mi'``, submodlib ``FacilityLocationMutualInformation``):
  ``I(A; Q) = Σ_{j∈V} min(max_{i∈A} s_ji, η max_{q∈Q} s_jq)`` over the ground set ``V = U``,
  which needs the ``n_U × n_U`` kernel (14 GB at 59k). **Approximation:** ``V`` is a uniform
  random subset of ``max_columns`` unlabeled rows (the sum over ``V`` becomes a Monte-Carlo
  estimate of the sum over ``U``; every unlabeled row stays a candidate), kernel
  ``[n, max_columns]``. Exact whenever ``n_U ≤ max_columns``.

Both are maximised by the memoised naive greedy (``B`` steps, no stop on zero gain, ties to
the lowest index); DISTIL's lazy greedy gives the same set up to ties. The query set
(BASELINES.md §6.4 REC, our choice): the labeled rows of the *tail* classes (count in ``L``
below the median class count of ``L``), recomputed every round; all of ``L`` when that is
empty (a balanced ``L``) or with ``query="labeled"``. Queries beyond ``max_columns`` are
subsampled uniformly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jal import parallel
from jal.strategies.base import Context, Strategy
from jal.strategies.glister import last_layer_factor
from jal.train import predict

__all__ = ["FUNCTIONS", "QUERIES", "similarity", "query_rows", "flqmi_value", "flvmi_value",
           "flqmi_greedy", "flvmi_greedy", "flqmi_select", "flvmi_select", "similar_strategy"]

FUNCTIONS = ("flqmi", "flvmi")
QUERIES = ("tail", "labeled")


def _norms(a, h):
  """``‖g‖`` ``[n]`` of ``g = [a ; vec(a hᵀ)]``."""
  return jnp.sqrt(jnp.sum(a * a, axis=-1) * (1.0 + jnp.sum(h * h, axis=-1)))


def similarity(a_x: jax.Array, h_x: jax.Array, a_y: jax.Array, h_y: jax.Array) -> jax.Array:
  """``(cos(g_x, g_y) + 1) / 2`` ``[n_x, n_y]`` of gradient embeddings given as factors.

  Args:
    a_x: ``[n_x, K]``, h_x: ``[n_x, D]``; a_y: ``[n_y, K]``, h_y: ``[n_y, D]``.
  """
  dot = (a_x @ a_y.T) * (1.0 + h_x @ h_y.T)
  den = _norms(a_x, h_x)[:, None] * _norms(a_y, h_y)[None, :]
  cos = jnp.where(den > 0, dot / jnp.where(den > 0, den, 1.0), 0.0)
  return (jnp.clip(cos, -1.0, 1.0) + 1.0) / 2.0


def _kernel(a, h, a_cols, h_cols, chunk_size):
  """:func:`similarity` of every pool row with the columns, ``chunk_size`` rows at a time."""
  return parallel.chunked_map(lambda t: similarity(t[0], t[1], a_cols, h_cols), (a, h),
                              chunk_size)


def _bucket(n: int, cap: int, low: int = 8) -> int:
  """Static column count: the power of two ``≥ max(n, low)``, at most ``cap``."""
  size = low
  while size < n:
    size *= 2
  return min(size, cap)


def query_rows(key: jax.Array, y, labeled, num_classes: int, mode: str = "tail",
               max_rows: int = 2048) -> np.ndarray:
  """Sorted pool indices of the query set (read from the labeled rows only).

  Args:
    key: PRNG key of the subsample when there are more than ``max_rows``.
    y: ``[n]`` labels (only labeled entries are read).
    labeled: ``[n]`` bool.
    num_classes: ``K``.
    mode: ``"tail"`` (labeled rows of the classes whose count in ``L`` is below the median
      of the ``K`` class counts; all of ``L`` when there are none) or ``"labeled"``.
    max_rows: cap on the query size.
  """
  if mode not in QUERIES:
    raise ValueError(f"query must be one of {QUERIES}, got {mode!r}")
  lab = np.flatnonzero(np.asarray(labeled))
  if lab.size == 0:
    raise ValueError("SIMILAR's query set is drawn from the labeled set, which is empty")
  q = lab
  if mode == "tail":
    yl = np.asarray(y)[lab]
    counts = np.bincount(yl, minlength=num_classes)
    tail = counts < np.median(counts)
    q = lab[tail[yl]] if tail[yl].any() else lab
  if q.size > max_rows:
    q = np.sort(np.asarray(jax.random.choice(key, q, (max_rows,), replace=False)))
  return q


def flqmi_value(s_aq: np.ndarray, eta: float = 1.0) -> float:
  """``I(A; Q)`` of FLQMI from ``s_aq [|A|, |Q|]`` (NumPy; the set-function definition)."""
  if s_aq.shape[0] == 0:
    return 0.0
  return float(np.sum(np.max(s_aq, axis=0)) + eta * np.sum(np.max(s_aq, axis=1)))


def flvmi_value(s_va: np.ndarray, s_vq: np.ndarray, eta: float = 1.0) -> float:
  """``I(A; Q)`` of FLVMI from ``s_va [|V|, |A|]`` and ``s_vq [|V|, |Q|]`` (NumPy)."""
  m = np.max(s_va, axis=1) if s_va.shape[1] else np.zeros(s_va.shape[0])
  return float(np.sum(np.minimum(m, eta * np.max(s_vq, axis=1))))


@functools.partial(jax.jit, static_argnames=("budget",))
def flqmi_greedy(s: jax.Array, q_valid: jax.Array, candidates: jax.Array, eta, budget: int
                 ) -> tuple[jax.Array, jax.Array]:
  """Memoised greedy for FLQMI.

  Args:
    s: ``[n, P]`` kernel of the pool with the (padded) query columns.
    q_valid: ``[P]`` bool real query columns.
    candidates: ``[n]`` bool rows that may be picked.
    eta: ``η``.
    budget: ``B`` (static).

  Returns:
    ``(indices [B] int32, gains [B])``: ``Δ_i = Σ_q max(0, s_iq − m_q) + η max_q s_iq`` with
    the memo ``m_q = max_{a∈A} s_aq`` (0 for the empty set).
  """
  w = q_valid.astype(s.dtype)
  modular = eta * jnp.max(jnp.where(q_valid[None, :], s, 0.0), axis=1)
  gain = lambda memo: (jnp.sum(jnp.maximum(s - memo[None, :], 0.0) * w[None, :], axis=1)
                       + modular)
  return _memo_greedy(s, gain, candidates, budget)


def _memo_greedy(s: jax.Array, gain, candidates: jax.Array, budget: int
                 ) -> tuple[jax.Array, jax.Array]:
  """Greedy with a facility-location memo ``m = max_{a∈A} s_a`` (0 for the empty set):
  ``gain(m) -> [n]`` marginal gains; ``budget`` picks among ``candidates``."""
  def body(t, carry):
    memo, avail, idx, gains = carry
    g = jnp.where(avail, gain(memo), -jnp.inf)
    i = jnp.argmax(g)
    return (jnp.maximum(memo, s[i]), avail.at[i].set(False), idx.at[t].set(i),
            gains.at[t].set(g[i]))

  init = (jnp.zeros((s.shape[1],), s.dtype), candidates, jnp.zeros((budget,), jnp.int32),
          jnp.zeros((budget,), s.dtype))
  _, _, idx, gains = jax.lax.fori_loop(0, budget, body, init)
  return idx, gains


@functools.partial(jax.jit, static_argnames=("budget",))
def flvmi_greedy(s: jax.Array, cap: jax.Array, v_valid: jax.Array, candidates: jax.Array,
                 budget: int) -> tuple[jax.Array, jax.Array]:
  """Memoised greedy for FLVMI.

  Args:
    s: ``[n, M]`` kernel of the pool with the (padded) ground columns ``V``.
    cap: ``[M]`` ``c_j = η max_q s_jq`` of each ground column.
    v_valid: ``[M]`` bool real ground columns.
    candidates: ``[n]`` bool rows that may be picked.
    budget: ``B`` (static).

  Returns:
    ``(indices [B] int32, gains [B])``: ``Δ_i = Σ_j [min(max(m_j, s_ij), c_j) − min(m_j, c_j)]``
    with the memo ``m_j = max_{a∈A} s_aj`` (0 for the empty set).
  """
  w = v_valid.astype(s.dtype)
  gain = lambda memo: jnp.sum((jnp.minimum(jnp.maximum(memo[None, :], s), cap[None, :])
                               - jnp.minimum(memo, cap)[None, :]) * w[None, :], axis=1)
  return _memo_greedy(s, gain, candidates, budget)


def _padded(rows: np.ndarray, size: int) -> tuple[jax.Array, jax.Array]:
  """``rows`` padded (with its first entry) to ``size``, and the valid mask."""
  valid = np.arange(size) < rows.size
  return jnp.asarray(np.resize(rows, size) if rows.size else np.zeros(size, np.int64)), \
      jnp.asarray(valid)


@jax.jit
def _factors(logits, emb, y, q_idx):
  return last_layer_factor(logits), last_layer_factor(logits[q_idx], y[q_idx]), emb[q_idx]


@functools.partial(jax.jit, static_argnames=("budget", "chunk_size"))
def flqmi_select(a_u: jax.Array, h_u: jax.Array, a_q: jax.Array, h_q: jax.Array,
                 q_valid: jax.Array, candidates: jax.Array, eta, budget: int,
                 chunk_size: int = 1024) -> tuple[jax.Array, jax.Array]:
  """FLQMI's kernel (pool × query, built ``chunk_size`` rows at a time) and its greedy.

  Args:
    a_u: ``[n, K]`` factors and h_u: ``[n, D]`` embeddings of the pool.
    a_q: ``[P, K]`` factors (true labels) and h_q: ``[P, D]`` embeddings of the padded query.
    q_valid: ``[P]`` real query rows.
    candidates: ``[n]`` bool rows that may be picked.
    eta: ``η``.
    budget: ``B`` (static).
    chunk_size: rows per kernel chunk (static).

  Returns:
    :func:`flqmi_greedy`'s ``(indices [B], gains [B])``; memory ``O(n P)``.
  """
  s = _kernel(a_u, h_u, a_q, h_q, chunk_size)
  return flqmi_greedy(s, q_valid, candidates, eta, budget)


@functools.partial(jax.jit, static_argnames=("budget", "chunk_size"))
def flvmi_select(a_u: jax.Array, h_u: jax.Array, a_q: jax.Array, h_q: jax.Array,
                 q_valid: jax.Array, v_idx: jax.Array, v_valid: jax.Array,
                 candidates: jax.Array, eta, budget: int, chunk_size: int = 1024
                 ) -> tuple[jax.Array, jax.Array]:
  """FLVMI on the ground columns ``v_idx``: pool × ground kernel, caps, greedy.

  Args:
    a_u, h_u, a_q, h_q, q_valid, candidates, eta, budget, chunk_size: as
      :func:`flqmi_select`.
    v_idx: ``[M]`` pool rows of the (padded) ground set.
    v_valid: ``[M]`` real ground rows.

  Returns:
    :func:`flvmi_greedy`'s ``(indices [B], gains [B])``; memory ``O(n M)``, never ``n × n``.
  """
  s = _kernel(a_u, h_u, a_u[v_idx], h_u[v_idx], chunk_size)
  s_vq = similarity(a_u[v_idx], h_u[v_idx], a_q, h_q)
  cap = eta * jnp.max(jnp.where(q_valid[None, :], s_vq, 0.0), axis=1)
  return flvmi_greedy(s, cap, v_valid, candidates, budget)


def similar_strategy(function: str | None = None, eta: float | None = None,
                     query: str | None = None, max_columns: int | None = None) -> Strategy:
  """SIMILAR with a facility-location mutual information and a query set from ``L``.

  Args:
    function: ``"flqmi"`` (default, BASELINES.md §6.4 REC) or ``"flvmi"`` (ground set
      subsampled to ``max_columns`` unlabeled rows: see the module docstring).
    eta: ``η`` of the measure (``None``: 1, DISTIL's default).
    query: ``"tail"`` (default) or ``"labeled"`` (:func:`query_rows`).
    max_columns: kernel columns kept (``None``: 2048): the cap on ``|Q|`` and, for FLVMI, the
      ground-set size. Memory is ``4 · n · max_columns`` bytes at most.

  Returns:
    The ``Strategy``; ``pick``'s info holds the query size (and the ground size for FLVMI).

  Raises:
    ValueError: for an unknown ``function`` or ``query``.
  """
  function = "flqmi" if function is None else function
  query = "tail" if query is None else query
  eta = 1.0 if eta is None else float(eta)
  max_columns = 2048 if max_columns is None else int(max_columns)
  if function not in FUNCTIONS:
    raise ValueError(f"function must be one of {FUNCTIONS}, got {function!r}")
  if query not in QUERIES:
    raise ValueError(f"query must be one of {QUERIES}, got {query!r}")
  if max_columns < 1:
    raise ValueError(f"max_columns must be >= 1, got {max_columns}")

  def score(key, ctx: Context):
    return predict(ctx.net, ctx.variables, ctx.x, ctx.chunk_size, mesh=ctx.mesh)

  def pick(key, ctx: Context, aux, budget):
    k_q, k_v = jax.random.split(key)
    labeled = np.asarray(ctx.labeled)
    q = query_rows(k_q, ctx.y, labeled, ctx.num_classes, query, max_columns)
    q_idx, q_valid = _padded(q, _bucket(q.size, max_columns))
    a_u, a_q, h_q = _factors(aux[0], aux[1], ctx.y, q_idx)
    info = {"query_size": int(q.size)}
    if function == "flqmi":
      idx, _ = flqmi_select(a_u, aux[1], a_q, h_q, q_valid, ~ctx.labeled, jnp.float32(eta), budget,
                      ctx.chunk_size)
      return idx, info
    unl = np.flatnonzero(~labeled)
    m = min(max_columns, labeled.size)
    if unl.size > m:
      unl = np.sort(np.asarray(jax.random.choice(k_v, unl, (m,), replace=False)))
    v_idx, v_valid = _padded(unl, m)
    idx, _ = flvmi_select(a_u, aux[1], a_q, h_q, q_valid, v_idx, v_valid, ~ctx.labeled,
                    jnp.float32(eta), budget, ctx.chunk_size)
    return idx, {**info, "ground_size": int(unl.size)}

  return Strategy("similar", score, pick)
