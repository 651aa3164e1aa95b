"""BRAL-T on the embedded digits data: the README's main job (a few minutes on 2 CPU cores).

The 8×8 digits pool is small (1,257 images), so the RL environment is scaled down with it:
C = M = 5 state / label clusters and A_c = 3 actions (Table 5 uses C = M = K and A_c = 5 for
pools of tens of thousands), Sinkhorn clouds capped at 128 points, ε = 1e-2·mean cost and
over-relaxed Sinkhorn (ω = 1.5) as in the reduced Fashion-MNIST protocol. The target model
(an MLP) trains with SuperLoss (τ = log K, λ = 1); 30 samplings of 20 SGD steps per round.
Q = 300 (6 rounds of 50).
"""

from experiments.configs import default


def get_config():
  c = default.get_config()
  c.strategy.name = "bral_t"
  c.strategy.kwargs.update(n_state_clusters=5, n_label_clusters=5, actions=3, max_points=128,
                           rel_epsilon=1e-2, ot_momentum=1.5, lam=1.0, pad_to=128)
  c.loop.update(init_size=100, budget=50, rounds=6)
  c.train.superloss = "auto"
  return c
