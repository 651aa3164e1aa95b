"""BRAL-T on Fashion-MNIST, reduced for a CPU (SPEC §5 "CPU-feasible checks").

LeNet-5 instead of ResNet-18; |L0| = 500, b = 250, 10 rounds (Q = 2,500); 40 epochs with
SuperLoss (τ = log K, λ = 1), Adam 1e-3, batch 128; C = M = 10, A_c = 5, 30 samplings of
20 SGD steps. CPU concessions (strategy.kwargs): Sinkhorn clouds capped at 256 points
(SPEC: 1,000), ε = 1e-2·mean cost (A3: 1e-3) and over-relaxed Sinkhorn (ω = 1.5, same
fixed point), which cut the OT time ~10× and ~2–3× — see BUILD_NOTES for the measured
cost. Compare with ``--config.strategy.name=random`` on the same seeds.
"""

from experiments.configs.bralt_base import bralt_config


def get_config():
  c = bralt_config("fashion_mnist", init_size=500, budget=250, quota=2_500, epochs=40,
                   clusters=10, lam=1.0, model_kwargs={},
                   strategy_kwargs=dict(max_points=256, rel_epsilon=1e-2, ot_momentum=1.5))
  c.model.name = "lenet"
  c.loop.chunk_size = 2048
  return c
