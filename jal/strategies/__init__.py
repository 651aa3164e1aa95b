"""Query strategies behind one signature, ``select(strategy, key, ctx, budget) -> indices``."""

from jal.strategies.base import (
  Context,
  Strategy,
  check_budget,
  finalize_indices,
  no_info,
  pick,
  select,
  select_timed,
  top_k_unlabeled,
)
from jal.strategies.diversity import badge_strategy, coreset_strategy, kmeans_strategy
from jal.strategies.glister import glister_strategy
from jal.strategies.registry import STRATEGIES, get_strategy, register_strategy
from jal.strategies.similar import similar_strategy
from jal.strategies.uncertainty import (
  bald_strategy,
  entropy_strategy,
  least_confidence_strategy,
  margin_strategy,
  random_strategy,
)

__all__ = ["Context", "Strategy", "select", "select_timed", "pick", "no_info", "check_budget",
           "finalize_indices", "top_k_unlabeled", "STRATEGIES", "get_strategy",
           "register_strategy", "learned"]

for _name, _ctor in (("random", random_strategy), ("margin", margin_strategy),
                     ("entropy", entropy_strategy),
                     ("least_confidence", least_confidence_strategy), ("bald", bald_strategy),
                     ("coreset", coreset_strategy), ("kmeans", kmeans_strategy),
                     ("badge", badge_strategy)):
  register_strategy(_name, _ctor)
register_strategy("glister", glister_strategy)  # submodular family (issue 14)
register_strategy("similar", similar_strategy)

# Baselines of issue 14 (BASELINES.md §4, §7, §8, §9).
from jal.strategies.activeft import activeft_strategy  # noqa: E402
from jal.strategies.bait import bait_strategy  # noqa: E402
from jal.strategies.cluster_margin import cluster_margin_strategy  # noqa: E402
from jal.strategies.saal import saal_strategy  # noqa: E402

for _name, _ctor in (("cluster_margin", cluster_margin_strategy), ("bait", bait_strategy),
                     ("saal", saal_strategy), ("activeft", activeft_strategy)):
  register_strategy(_name, _ctor)

# The learned baselines (LossPrediction, WAAL, VAAL) register themselves.
from jal.strategies import learned  # noqa: E402  (after the base modules it builds on)
