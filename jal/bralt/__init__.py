"""BRAL-T (Batch Reinforcement Active Learning with TrustSet) and its ablations.

Modules: ``trustset`` (class-balanced top σ*·EL2N), ``ot`` (padded, masked W₂²),
``env`` (one RL sampling and the 30-sampling run), ``reward_net`` (R_φ, buffer, SGD),
``select`` (A8 quota fill), ``strategy`` (the ``Strategy`` constructors).

Example:
  >>> from jal.bralt import BRALT_STRATEGIES
  >>> sorted(BRALT_STRATEGIES)
  ['bral_diffset', 'bral_t', 'bral_t_wo_cl', 'gradnd_gt', 'pseudo_score']
"""

from jal.bralt import env, ot, reward_net, select, strategy, trustset
from jal.bralt.ot import wasserstein
from jal.bralt.strategy import (
  BRALT_STRATEGIES,
  bral_diffset_strategy,
  bral_t_strategy,
  bral_t_wo_cl_strategy,
  gradnd_gt_strategy,
  pseudo_score_strategy,
)
from jal.bralt.trustset import trust_scores, trustset_mask
from jal.strategies.registry import register_strategy

for _name, _ctor in BRALT_STRATEGIES.items():
  register_strategy(_name, _ctor)

__all__ = [
  "env", "ot", "reward_net", "select", "strategy", "trustset",
  "BRALT_STRATEGIES", "bral_t_strategy", "bral_t_wo_cl_strategy", "bral_diffset_strategy",
  "pseudo_score_strategy", "gradnd_gt_strategy", "trust_scores", "trustset_mask",
  "wasserstein",
]
