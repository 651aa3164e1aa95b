"""Seconds-long RAMBO one-round smoke protocol on digits (MLP classifier; used by the tests)."""

from experiments.configs import rambo_mnist


def get_config() -> dict:
  c = rambo_mnist.get_config()
  c.update(dataset="digits", val_size=None, model="mlp", model_kwargs={"hidden": (32,)},
           k=30, budget=10, k1=20, b=5, n_aug=4, offline_pairs=6, offline_steps=5,
           m_factor=2, fit_chunk=6, init_size=30, dulo_candidates=20, ot_debiased=False,
           outer_steps=2, inner_steps=3, cg_steps=2, epochs=5)
  return c
