"""Seconds-long RAMBO one-round smoke protocol on digits (MLP classifier; used by the tests).

Five classifier epochs: its accuracies mean nothing (``rambo_digits`` is the meaningful
digits protocol).
"""

from experiments.configs import base


def get_config():
  return base.one_round_config(
      dataset="digits", model="mlp", model_kwargs={"hidden": (32,)},
      k=30, budget=10, k1=20, b=5, n_aug=4, offline_pairs=6, offline_steps=5, m_factor=2,
      fit_chunk=6, dulo_candidates=20, ot_debiased=False, outer_steps=2, inner_steps=3,
      cg_steps=2, epochs=5, batch_size=64)
