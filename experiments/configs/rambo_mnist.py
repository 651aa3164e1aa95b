"""RAMBO one-round protocol on MNIST (B.7, §5.1): LeNet-5, k = 200, B ∈ {500, 700, 900, 1000}.

Classifier rule of §5.1: Adam 1e-3, minibatch 64, until train accuracy > 99% or 100 epochs.
Utility model: τ₁ = (200 − 50) / 50 = 3 iterations of n = 50 augmented pairs, 500 offline
pairs, M = 10b (SPEC R1–R9 REC readings). Override ``budget`` for the other table columns.
"""

BUDGETS = (500, 700, 900, 1000)


def get_config() -> dict:
  return dict(
      dataset="mnist", val_size=1000, data_seed=0, model="lenet", model_kwargs={},
      strategy="rambo", seed=0,
      k=200, budget=500, k1=50, b=50, n_aug=50, offline_pairs=500, offline_steps=500,
      m_factor=10, fit_chunk=50, extractor="auto", dulo_candidates=500,
      chunk_size=2048, init_size=200, rounds=1,  # for experiments.common (init_size = k)
      bilevel=True, ot=True, ranknet=True, ot_debiased=True, aug_from_next=True, offline_in_d=False,
      aug_distance="euclidean",
      noise_rate=0.0, imbalance="none", imbalance_classes=0.3, imbalance_fraction=0.2,  # R8
      outer_steps=20, inner_steps=100, cg_steps=10, hypergrad="cg",
      epochs=100, batch_size=64, learning_rate=1e-3, optimizer="adam", stop_train_acc=0.99,
  )
