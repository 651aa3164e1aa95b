"""How the target model is trained: ``TrainConfig`` and the optimizer it describes."""

import dataclasses

import optax

__all__ = ["TrainConfig", "make_optimizer"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How the target model is trained (hashable: a ``jit`` static argument).

  Attributes:
    epochs: number of epochs, or the maximum when ``stop_train_acc`` is set.
    batch_size: fixed minibatch size ``B``.
    learning_rate: optimizer step size.
    optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
    weight_decay: decoupled weight decay (AdamW / SGD with L2); 0 disables.
    stop_train_acc: stop once the epoch's running train accuracy exceeds this (RAMBO §5.1
      uses 0.99 with ``epochs=100``); ``None`` trains for exactly ``epochs``.
    superloss: weight per-example CE by SuperLoss's closed-form σ* (BRAL-T §4.1).
    superloss_tau: SuperLoss threshold τ; ``None`` means ``log K``.
    superloss_lam: SuperLoss regulariser λ.
    augment: ``"none"`` or ``"crop_flip"`` (4-pixel reflect-pad random crop + horizontal flip).
    fused_epoch: run each epoch as one device program (``lax.fori_loop`` over steps) instead
      of a Python loop over one compiled step. ``None`` = fused on GPU/TPU, Python loop on CPU,
      where XLA runs a step inside a loop 2-5x slower than the same step dispatched alone
      (BUILD_NOTES.md). Both give the same result.
  """
  epochs: int = 20
  batch_size: int = 64
  learning_rate: float = 1e-3
  optimizer: str = "adam"
  weight_decay: float = 0.0
  stop_train_acc: float | None = None
  superloss: bool = False
  superloss_tau: float | None = None
  superloss_lam: float = 1.0
  augment: str = "none"
  fused_epoch: bool | None = None

  def __post_init__(self):
    if self.epochs < 1 or self.batch_size < 1:
      raise ValueError(f"epochs and batch_size must be >= 1, got epochs={self.epochs}, "
                       f"batch_size={self.batch_size}")
    if not 0 < self.learning_rate < float("inf"):
      raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
    if not 0 <= self.weight_decay < float("inf"):
      raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
    if self.stop_train_acc is not None and not 0 <= self.stop_train_acc <= 1:
      raise ValueError(f"stop_train_acc must lie in [0, 1] (or be None), got "
                       f"{self.stop_train_acc}")
    if self.superloss_tau is not None and not self.superloss_tau > 0:
      raise ValueError(f"superloss_tau must be > 0 (or None for log K), got "
                       f"{self.superloss_tau}")
    if not self.superloss_lam > 0:
      raise ValueError(f"superloss_lam must be > 0, got {self.superloss_lam}")
    if self.optimizer not in ("adam", "sgd"):
      raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
    if self.augment not in ("none", "crop_flip"):
      raise ValueError(f"augment must be 'none' or 'crop_flip', got {self.augment!r}")


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """The optax optimizer described by ``config``."""
  if config.optimizer == "adam":
    if config.weight_decay:
      return optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return optax.adam(config.learning_rate)
  tx = optax.sgd(config.learning_rate, momentum=0.9)
  if config.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
  return tx
