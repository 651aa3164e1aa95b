"""RAMBO one-round protocol on MNIST (B.7, §5.1): LeNet-5, k = 200, B ∈ {500, 700, 900, 1000}.

Classifier rule of §5.1: Adam 1e-3, minibatch 64, until train accuracy > 99% or 100 epochs.
Utility model: τ₁ = (200 − 50) / 50 = 3 iterations of n = 50 augmented pairs, 500 offline
pairs, M = 10b (SPEC R1–R9 REC readings). Override ``--config.rambo.budget`` for the other
table columns. Needs the MNIST IDX files (``--data_dir``).
"""

from experiments.configs import base

BUDGETS = (500, 700, 900, 1000)


def get_config():
  return base.one_round_config(
      dataset="mnist", val_size=1000, model="lenet", model_kwargs={},
      k=200, budget=500, k1=50, b=50, n_aug=50, offline_pairs=500, offline_steps=500,
      m_factor=10, fit_chunk=50, dulo_candidates=500, epochs=100, batch_size=64)
