"""RAMBO one-round protocol on CIFAR10 (B.7): ResNet-18, k = 2500, k₁ = 500, b = 1000, τ₁ = 2,
n = 30, B ∈ {5000, 7000, 9000, 10000}, 500 offline pairs (tfds ``cifar10``).

Tables 1 and 5 use k = 3500 instead (SPEC §2.2); override ``k``/``k1`` for those rows.
"""

BUDGETS = (5000, 7000, 9000, 10000)


def get_config() -> dict:
  return dict(
      dataset="cifar10", val_size=1000, data_seed=0, model="resnet18", model_kwargs={},
      strategy="rambo", seed=0,
      k=2500, budget=5000, k1=500, b=1000, n_aug=30, offline_pairs=500, offline_steps=500,
      m_factor=10, fit_chunk=25, extractor="auto", dulo_candidates=5000,
      chunk_size=2048, init_size=2500, rounds=1,  # for experiments.common (init_size = k)
      bilevel=True, ot=True, ranknet=True, ot_debiased=True, aug_from_next=True, offline_in_d=False,
      aug_distance="euclidean",
      noise_rate=0.0, imbalance="none", imbalance_classes=0.3, imbalance_fraction=0.2,  # R8
      outer_steps=20, inner_steps=100, cg_steps=10, hypergrad="cg",
      epochs=100, batch_size=64, learning_rate=1e-3, optimizer="adam", stop_train_acc=0.99,
  )
