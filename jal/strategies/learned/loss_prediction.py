"""LossPrediction / LLAL (Yoo & Kweon, CVPR 2019; BASELINES.md §1).

A loss-prediction module ("LossNet") reads feature taps of the classifier
(``Net.apply_features``: ResNet-18's four stage outputs; LeNet-5's pooled conv maps and fc
activations; the MLP's hidden activations) and is trained jointly with it by a pairwise margin
ranking loss on the per-row cross-entropies. From the detach epoch ``e_d`` on, the module's
gradient no longer reaches the classifier. The query takes the unlabeled rows with the
largest predicted loss.

Its ``fit`` replaces ``jal.fit``: same initialisation and data order as ``jal.fit`` for a key
(labeled rows only, the last batch topped up with zero-weight repeats, so BatchNorm only sees
labeled rows), plus the LossNet and its own optimiser (Adam, DeepAL+'s lr 0.01). The
detach switch is a traced scalar, so epochs before and after ``e_d`` share one compiled step.
The LossNet is re-initialised every round (DeepAL+ keeps its instance across rounds; a
documented deviation that keeps the strategy free of cross-round state).
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jal import cluster, parallel
from jal.models.net import Net, Variables
from jal.parallel.chunking import chunked_map
from jal.strategies.base import Context, Strategy, no_info
from jal.strategies.learned.common import (
  commit_step,
  end_epoch,
  linear_init,
  replicate,
  run_epochs,
  use_fused,
)
from jal.train import epoch
from jal.train.config import TrainConfig, make_optimizer
from jal.train.trainer import FitResult, check_pool, place

__all__ = ["LossPredConfig", "LLState", "lossnet_init", "lossnet_apply", "ranking_loss",
           "detach", "joint_loss", "feature_widths", "fit_loss_prediction", "predicted_losses",
           "lossprediction_strategy"]

LOSSNET_STREAM = 0x1055  # fold_in constant of the LossNet's initialisation key


@dataclasses.dataclass(frozen=True)
class LossPredConfig:
  """LossPrediction's settings (hashable: a ``jit`` static argument).

  Attributes:
    margin: ξ of the ranking loss (1 in every reference).
    weight: λ, the ranking loss's weight (1).
    detach_epoch: ``e_d``: 0-based epochs ``t < e_d`` train the classifier with the ranking
      gradient too, later epochs with the CE gradient only (20 = BRAL-T's "first 20 epochs";
      DeepAL+ exactly is 19, LL4AL-repro 121).
    lossnet_lr: the LossNet's Adam learning rate (DeepAL+: 0.01).
    width: units per tap of the LossNet (128).
    extra_epochs: epochs added to the protocol's (DeepAL+ trains LossPrediction 20 epochs
      longer than every other strategy; 0 = BRAL-T's "same epochs for all baselines").
  """
  margin: float = 1.0
  weight: float = 1.0
  detach_epoch: int = 20
  lossnet_lr: float = 1e-2
  width: int = 128
  extra_epochs: int = 0

  def __post_init__(self):
    if self.detach_epoch < 0 or self.extra_epochs < 0 or self.width < 1:
      raise ValueError(f"need detach_epoch >= 0, extra_epochs >= 0, width >= 1; got {self}")
    if not (self.lossnet_lr > 0 and self.weight >= 0 and self.margin >= 0):
      raise ValueError(f"need lossnet_lr > 0, weight >= 0, margin >= 0; got {self}")


class LLState(NamedTuple):
  """Training state: the classifier's ``TrainState``, the LossNet and its optimiser state."""
  train: epoch.TrainState
  head: Any
  head_opt: Any


def feature_widths(net: Net, input_shape: tuple[int, ...]) -> tuple[int, ...]:
  """Channels (last axis) of each feature tap of ``net`` for images of ``input_shape``."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  out = jax.eval_shape(lambda v, xx: net.apply_features(v, xx)[2], jax.eval_shape(net.init,
                       jax.random.key(0)), x)
  return tuple(int(t.shape[-1]) for t in out)


def lossnet_init(key: jax.Array, widths: tuple[int, ...], width: int = 128) -> dict:
  """LossNet parameters: per tap ``Linear(c_k → width)``, then ``Linear(k·width → 1)``
  (PyTorch's default initialisation, as both references)."""
  keys = jax.random.split(key, len(widths) + 1)
  return {"taps": [linear_init(k, c, width) for k, c in zip(keys[:-1], widths)],
          "out": linear_init(keys[-1], width * len(widths), 1)}


def lossnet_apply(params: dict, taps) -> jax.Array:
  """Predicted losses ``[n]``: ``w·[ReLU(W_k·GAP(F_k) + b_k)]_k + c``.

  GAP is the mean over every axis between the first and the last (a true global mean, so the
  module does not depend on the stem; vectors pass through).
  """
  feats = []
  for p, t in zip(params["taps"], taps):
    g = jnp.mean(t, axis=tuple(range(1, t.ndim - 1))) if t.ndim > 2 else t
    feats.append(jax.nn.relu(g @ p["w"] + p["b"][None]))
  h = jnp.concatenate(feats, axis=-1)
  return (h @ params["out"]["w"] + params["out"]["b"][None])[:, 0]


def ranking_loss(pred: jax.Array, target: jax.Array, n_real: jax.Array,
                 margin: float = 1.0) -> jax.Array:
  """The pairwise margin ranking loss of LL4AL (BASELINES.md §1.3, §1.4.6).

  Rows ``0..r−1`` are real (``r = n_real``, traced), the rest zero-weight top-up. Row ``i``
  is paired with row ``r−1−i`` for ``i < ⌊r/2⌋`` (for ``r = M`` the references' flipped
  batch); ``A = +1`` if ``target_i > target_j`` else ``−1`` (ties count as −1); the loss is
  ``mean_pairs max(0, ξ − A·(pred_i − pred_j))``. An odd ``r`` leaves the middle row unpaired;
  ``r < 2`` gives 0. ``target`` is treated as a constant.

  Args:
    pred: ``[M]`` predicted losses.
    target: ``[M]`` true losses.
    n_real: ``[]`` int, real rows at the front of the batch.
    margin: ξ.
  """
  m = pred.shape[0]
  target = jax.lax.stop_gradient(target)
  i = jnp.arange(m // 2, dtype=jnp.int32)
  j = jnp.clip(n_real - 1 - i, 0, m - 1)
  valid = i < n_real // 2
  sign = jnp.where(target[i] - target[j] > 0, 1.0, -1.0)
  terms = jnp.maximum(0.0, margin - sign * (pred[i] - pred[j]))
  return jnp.sum(jnp.where(valid, terms, 0.0)) / jnp.maximum(n_real // 2, 1)


def detach(taps, d: jax.Array):
  """``F − d·(F − stop_gradient(F))`` per tap: the value of ``F``; its gradient is cut for
  ``d = 1`` and kept for ``d = 0`` (one compiled step serves both phases)."""
  return tuple(t - d * (t - jax.lax.stop_gradient(t)) for t in taps)


def joint_loss(net: Net, hp: LossPredConfig, params, head, extra, xb, yb, wb, n_real, d,
               key=None):
  """The training loss of one minibatch: weighted mean CE + λ·ranking loss (§1.4).

  Args:
    net, hp: the classifier and LossPrediction's settings.
    params, head, extra: classifier parameters, LossNet parameters, BatchNorm statistics.
    xb, yb, wb: ``[M, ...]`` images, labels and weights (1 for the ``n_real`` real rows at the
      front, 0 for the top-up).
    n_real: ``[]`` int, real rows.
    d: ``[]`` float, 1 from the detach epoch on (the ranking gradient stops at the features),
      else 0.
    key: dropout key.

  Returns:
    ``(loss, (new_extra, correct))``.
  """
  logits, _, feats, new_extra = net.apply_features(Variables(params, extra), xb, train=True,
                                                   key=key)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
  pred = lossnet_apply(head, detach(feats, d))
  loss = (jnp.sum(ce * wb) / jnp.maximum(jnp.sum(wb), 1.0)
          + hp.weight * ranking_loss(pred, ce, n_real, hp.margin))
  return loss, (new_extra, jnp.sum((jnp.argmax(logits, -1) == yb) * wb))


def _init(net: Net, config: TrainConfig, hp: LossPredConfig, widths, key):
  train = epoch.init_state(net, config, key)
  head = lossnet_init(jax.random.fold_in(key, LOSSNET_STREAM), widths, hp.width)
  return LLState(train, head, optax.adam(hp.lossnet_lr).init(head))


def _begin(state: LLState, key, mask, batch_size: int):
  train, plan = epoch.begin(state.train, key, mask, batch_size)
  return state._replace(train=train), plan


def _step(net: Net, config: TrainConfig, hp: LossPredConfig, state: LLState, plan, s, x, y):
  """Minibatch ``s`` of ``joint_loss``; the ranking gradient reaches the classifier only
  before ``hp.detach_epoch``. A no-op past the epoch's steps or once training is done."""
  tx, hx = make_optimizer(config), optax.adam(hp.lossnet_lr)
  bsz = config.batch_size
  pos = s * bsz + jnp.arange(bsz, dtype=jnp.int32)
  wb = (pos < plan.n_lab).astype(jnp.float32)
  n_real = jnp.clip(plan.n_lab - s * bsz, 0, bsz)
  idx = plan.order[pos % plan.n_lab]  # labeled rows only; the top-up repeats them
  k_aug, k_drop = jax.random.split(jax.random.fold_in(plan.key, s))
  xb, yb, wb = (parallel.constrain_rows(a) for a in (x[idx], y[idx], wb))
  if config.augment == "crop_flip":
    xb = epoch.augment(k_aug, xb)
  tr = state.train
  d = (tr.epoch >= hp.detach_epoch).astype(jnp.float32)
  (g_params, g_head), (extra, c) = jax.grad(
      lambda p, h: joint_loss(net, hp, p, h, tr.variables.extra, xb, yb, wb, n_real, d, k_drop),
      argnums=(0, 1), has_aux=True)(tr.variables.params, state.head)
  updates, opt_state = tx.update(g_params, tr.opt_state, tr.variables.params)
  params = optax.apply_updates(tr.variables.params, updates)
  h_updates, head_opt = hx.update(g_head, state.head_opt, state.head)
  new = LLState(tr._replace(variables=Variables(params, extra), opt_state=opt_state,
                            correct=tr.correct + c, seen=tr.seen + jnp.sum(wb)),
                optax.apply_updates(state.head, h_updates), head_opt)
  return commit_step(new, state, (s < plan.steps) & ~tr.done)


def _fused(net, config, hp, state, key, x, y, mask):
  state, plan = _begin(state, key, mask, config.batch_size)
  state = jax.lax.fori_loop(0, plan.steps,
                            lambda s, st: _step(net, config, hp, st, plan, s, x, y), state)
  return end_epoch(config, state)


_init_jit = jax.jit(_init, static_argnums=(0, 1, 2, 3))
_begin_jit = jax.jit(_begin, static_argnums=(3,), donate_argnums=(0,))
_step_jit = jax.jit(_step, static_argnums=(0, 1, 2), donate_argnums=(3,))
_end_jit = jax.jit(end_epoch, static_argnums=(0,), donate_argnums=(1,))
_fused_jit = jax.jit(_fused, static_argnums=(0, 1, 2), donate_argnums=(3,))


def fit_loss_prediction(key: jax.Array, net: Net, config: TrainConfig, x: jax.Array,
                        y: jax.Array, mask: jax.Array, hp: LossPredConfig = LossPredConfig(),
                        *, mesh=None) -> FitResult:
  """Trains a fresh classifier and LossNet jointly on the labeled rows (§1.4).

  Args:
    key: PRNG key; the classifier's initialisation and data order are those of
      ``jal.fit(key, …)``.
    net: the classifier (``Net.apply_features`` gives the LossNet's inputs).
    config: the protocol's training rule (optimizer, batch ``M``, epochs, stopping rule;
      SuperLoss is not supported). ``hp.extra_epochs`` are added to ``config.epochs``.
    x: pool ``[n, H, W, C]``; y: ``[n]`` labels; mask: ``[n]`` bool labeled set.
    hp: LossPrediction's settings.
    mesh: optional ``jal.parallel`` mesh (parameters replicated, minibatches split).

  Returns:
    ``FitResult`` whose ``extra`` is ``{"lossnet": params}``.
  """
  check_pool(x, y, mask, net.num_classes)
  if config.superloss:
    raise ValueError("lossprediction trains with cross-entropy; set superloss off")
  config = dataclasses.replace(config, epochs=config.epochs + hp.extra_epochs)
  widths = feature_widths(net, tuple(x.shape[1:]))
  k_init, k_train = jax.random.split(key)
  with parallel.use_mesh(mesh):
    state = _init_jit(net, config, hp, widths, k_init)
    state, x, y, mask = place(mesh, state, x, y, mask)
    bsz = config.batch_size
    state = run_epochs(
        state, k_train, config.epochs,
        begin=lambda st, k: _begin_jit(st, k, mask, bsz),
        step=lambda st, plan, s: _step_jit(net, config, hp, st, plan, s, x, y),
        end=lambda st: _end_jit(config, st),
        fused=(lambda st, k: _fused_jit(net, config, hp, st, k, x, y, mask))
        if use_fused(config) else None,
        done=(lambda st: bool(st.train.done)) if config.stop_train_acc is not None else None)
  tr = state.train
  return FitResult(tr.variables, tr.epoch, tr.train_acc, extra={"lossnet": state.head})


def _predicted(net: Net, variables: Variables, head, x: jax.Array, chunk_size: int):
  def fn(chunk):
    return lossnet_apply(head, net.apply_features(variables, chunk[0], train=False)[2])
  return chunked_map(fn, (x,), chunk_size)


_predicted_jit = jax.jit(_predicted, static_argnums=(0, 4))


def predicted_losses(net: Net, variables: Variables, lossnet: dict, x: jax.Array,
                     chunk_size: int = 1024, *, mesh=None) -> jax.Array:
  """The LossNet's predicted losses ``[n]`` of a pool (eval mode, fixed-size chunks)."""
  with parallel.use_mesh(mesh):
    return _predicted_jit(net, replicate(variables, mesh), replicate(lossnet, mesh), x,
                          int(chunk_size))


def lossprediction_strategy(detach_epoch: int = 20, margin: float = 1.0, weight: float = 1.0,
                            lossnet_lr: float = 1e-2, lossnet_width: int = 128,
                            extra_epochs: int = 0, candidates: int | None = None) -> Strategy:
  """LossPrediction / LLAL: the ``budget`` unlabeled rows of largest predicted loss.

  Args:
    detach_epoch, margin, weight, lossnet_lr, extra_epochs: see ``LossPredConfig``
      (``lossnet_width`` is its ``width``). DeepAL+ exactly: ``detach_epoch=19,
      extra_epochs=20``.
    candidates: score only a random subset of this many unlabeled rows (the paper and
      LL4AL-repro: 10,000); ``None`` scores all of U (DeepAL+, RAMBO).
  """
  hp = LossPredConfig(margin=float(margin), weight=float(weight),
                      detach_epoch=int(detach_epoch), lossnet_lr=float(lossnet_lr),
                      width=int(lossnet_width), extra_epochs=int(extra_epochs))
  if candidates is not None and int(candidates) < 1:
    raise ValueError(f"candidates must be >= 1 (or None), got {candidates}")

  def fit(key, net, config, x, y, labeled, *, mesh=None):
    return fit_loss_prediction(key, net, config, x, y, labeled, hp, mesh=mesh)

  def score(key, ctx: Context):
    if not isinstance(ctx.fit_extra, dict) or "lossnet" not in ctx.fit_extra:
      raise ValueError("lossprediction scores with the LossNet of its own fit; train the "
                       "model with strategy.fit (jal.run_loop does)")
    return predicted_losses(ctx.net, ctx.variables, ctx.fit_extra["lossnet"], ctx.x,
                            ctx.chunk_size, mesh=ctx.mesh)

  def pick(key, ctx: Context, losses, budget):
    blocked = ctx.labeled
    n_unl = int(np.size(ctx.labeled) - np.count_nonzero(np.asarray(ctx.labeled)))
    if candidates is not None and budget <= int(candidates) < n_unl:
      u = cluster.uniform_scores(key, ctx.labeled.shape[0], mesh=ctx.mesh)
      cand = np.asarray(cluster.top_k_unlabeled(u, ctx.labeled, int(candidates),
                                                mesh=ctx.mesh))
      keep = np.ones(ctx.labeled.shape[0], bool)
      keep[cand] = False
      blocked = jnp.asarray(keep)
    return cluster.top_k_unlabeled(losses, blocked, budget, mesh=ctx.mesh)

  return Strategy("lossprediction", score, no_info(pick), fit=fit)
