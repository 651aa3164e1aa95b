"""Shared builder of the BRAL-T configs (App. B, Table 5 of the BRAL-T paper; SPEC §1.2).

Keys beyond ``default.py`` that ``experiments/common.py`` must read:
  ``superloss_tau`` (``None`` → log K) and ``superloss_lam``: SuperLoss of the target model
    (``jal.TrainConfig(superloss_tau=..., superloss_lam=...)``); ``superloss="auto"`` trains with
    SuperLoss only for the curriculum-learning methods (``experiments.common.uses_superloss``).
  ``strategy_kwargs``: keyword arguments of the strategy constructor
    (``jal.get_strategy(config["strategy"], **config["strategy_kwargs"])``).
  ``train_transform``: ``None`` or a dict ``{"name": ..., **kwargs}`` naming a
    ``jal.data`` train-split transform (``keep_probability_imbalance`` for CIFAR10-imb,
    ``long_tail`` for CIFAR-LT), applied to the pool before the run.
  ``seeds``: the trial seeds (the paper reports the mean of 3 trials).
  ``quota``: ``Q`` = ``budget * rounds`` (documentation; AUBC is normalised by it).
"""

__all__ = ["bralt_config"]


def bralt_config(dataset: str, *, init_size: int, budget: int, quota: int, epochs: int,
                 clusters: int, lam: float, model_kwargs: dict, augment: str = "none",
                 optimizer: str = "adam", train_transform: dict | None = None,
                 strategy_kwargs: dict | None = None) -> dict:
  """A BRAL-T config dict: ResNet-18, SuperLoss training (τ = log K), Adam 1e-3, batch 128
  (DeepAL+ defaults, A10), ``rounds = Q / b`` (A12), ``C = M = clusters``, ``A_c = 5``."""
  rounds = quota // budget
  kwargs = dict(n_state_clusters=clusters, n_label_clusters=clusters, actions=5,
                num_samplings=30, steps_per_sampling=20, lam=lam)
  kwargs.update(strategy_kwargs or {})
  return dict(
      dataset=dataset, model="resnet18", model_kwargs=dict(model_kwargs),
      strategy="bral_t", strategy_kwargs=kwargs, seed=0, seeds=(0, 1, 2), val_size=0,
      init_size=init_size, budget=budget, rounds=rounds, quota=quota, chunk_size=1024,
      epochs=epochs, batch_size=128, learning_rate=1e-3, optimizer=optimizer,
      stop_train_acc=None, superloss="auto", superloss_tau=None, superloss_lam=lam,
      augment=augment, dropout=0.0, train_transform=train_transform,
  )
