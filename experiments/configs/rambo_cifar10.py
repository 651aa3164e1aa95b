"""RAMBO one-round protocol on CIFAR10 (B.7): ResNet-18, k = 2500, k₁ = 500, b = 1000, τ₁ = 2,
n = 30, B ∈ {5000, 7000, 9000, 10000}, 500 offline pairs (tfds ``cifar10``).

Tables 1 and 5 use k = 3500 instead (SPEC §2.2); override ``rambo.k`` / ``rambo.k1`` for
those rows.
"""

from experiments.configs import base

BUDGETS = (5000, 7000, 9000, 10000)


def get_config():
  return base.one_round_config(
      dataset="cifar10", val_size=1000, model="resnet18", model_kwargs={},
      k=2500, budget=5000, k1=500, b=1000, n_aug=30, offline_pairs=500, offline_steps=500,
      m_factor=10, fit_chunk=25, dulo_candidates=5000, epochs=100, batch_size=64)
