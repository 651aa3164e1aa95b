"""Shared builder of the BRAL-T configs (App. B, Table 5 of the BRAL-T paper; SPEC §1.2).

Not a config itself. BRAL-T configs train the target model with SuperLoss (τ = log K) when
``train.superloss == "auto"`` and the strategy is a curriculum-learning method
(``experiments.build.uses_superloss``); ``strategy.kwargs`` are BRAL-T's constructor
arguments; ``data.train_transform`` names the CIFAR10-imb / CIFAR-LT pool transform. The paper
reports the mean of 3 trials (``experiments.compare --seeds=0,1,2``); the quota is
``Q = loop.budget * loop.rounds`` (AUBC is normalised by it).
"""

from experiments.configs import base

__all__ = ["bralt_config"]


def bralt_config(dataset: str, *, init_size: int, budget: int, quota: int, epochs: int,
                 clusters: int, lam: float, model_kwargs: dict, augment: str = "none",
                 optimizer: str = "adam", train_transform: dict | None = None,
                 strategy_kwargs: dict | None = None):
  """A BRAL-T config: ResNet-18, SuperLoss training (τ = log K), Adam 1e-3, batch 128
  (DeepAL+ defaults, A10), ``rounds = Q / b`` (A12), ``C = M = clusters``, ``A_c = 5``."""
  kwargs = dict(n_state_clusters=clusters, n_label_clusters=clusters, actions=5,
                num_samplings=30, steps_per_sampling=20, lam=lam)
  kwargs.update(strategy_kwargs or {})
  return base.al_config(
      dataset=dataset, model="resnet18", model_kwargs=model_kwargs, strategy="bral_t",
      strategy_kwargs=kwargs, val_size=0, init_size=init_size, budget=budget,
      rounds=quota // budget, chunk_size=1024, epochs=epochs, batch_size=128,
      optimizer=optimizer, superloss="auto", superloss_lam=lam, augment=augment,
      train_transform=train_transform)
