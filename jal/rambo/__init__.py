"""RAMBO (ranking-based AL via multitask bilevel optimisation), DULO and the null control.

They are Strategies of one query round (``jal.rambo.strategy``), registered on import
as ``"rambo"``, ``"dulo"`` and ``"null"``; ``run_one_round`` runs one of them (or a baseline)
as one round of ``jal.run_loop``.

Example:
  >>> import jax, jal
  >>> from jal.rambo import RamboConfig, run_one_round
  >>> data = jal.data.load("digits")
  >>> net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(32,))
  >>> res = run_one_round(jax.random.key(0), data, net, jal.TrainConfig(epochs=5),
  ...                     RamboConfig(k=30, budget=10, k1=20, b=5), "random")
  >>> res["labeled"]
  40
"""

from jal.rambo.acquisition import (
  GreedyTrace,
  dulo_select,
  greedy_margin,
  null_select,
  rambo_select,
  smallest_margin,
)
from jal.rambo.bilevel import (
  BilevelConfig,
  PairData,
  implicit_hypergrad,
  init_lambda,
  regularizer,
  split_by_length,
  train_bilevel,
  train_plain,
)
from jal.rambo.config import ABLATIONS, RamboConfig, as_rambo_config, check_refinement
from jal.rambo.hypergrad import (
  HYPERGRADS,
  custom_root_hypergrad,
  implicit_solution,
  itd_hypergrad,
)
from jal.rambo.losses import ot_loss, rank_loss, rank_target, regression_loss, total_loss
from jal.rambo.protocol import (
  BASELINES,
  one_round_strategy,
  prepare_offline,
  run_baseline,
  run_dulo,
  run_null,
  run_one_round,
  run_rambo,
  trial_s0,
  trial_score_key,
)
from jal.rambo.samples import (
  AUG_DISTANCES,
  OTTargets,
  class_distance,
  interpolate_from_distances,
  interpolate_utility,
  latent_divergence,
  make_ot_targets,
  ot_targets,
  random_pair_masks,
  subset_utilities,
)
from jal.rambo.settings import IMBALANCE_MODES, imbalanced_pool, noisy_pool
from jal.rambo.strategy import ONE_ROUND_STRATEGIES, dulo_strategy, null_strategy, rambo_strategy
from jal.rambo.training import (
  Offline,
  Stream,
  UtilityFit,
  fit_dulo_utility,
  fit_rambo_utility,
  offline_samples,
  stream_key,
)
from jal.rambo.utility_model import SetNet, SetOutput, make_set_net, masked_mean
from jal.strategies.registry import register_strategy

__all__ = [
    "GreedyTrace", "dulo_select", "greedy_margin", "null_select", "rambo_select", "smallest_margin",
    "BilevelConfig", "PairData", "implicit_hypergrad", "init_lambda", "regularizer",
    "split_by_length", "train_bilevel", "train_plain",
    "HYPERGRADS", "custom_root_hypergrad", "implicit_solution", "itd_hypergrad",
    "ot_loss", "rank_loss", "rank_target", "regression_loss", "total_loss",
    "ABLATIONS", "RamboConfig", "as_rambo_config", "check_refinement",
    "BASELINES", "one_round_strategy", "prepare_offline", "run_baseline", "run_dulo", "run_null",
    "run_one_round", "run_rambo", "trial_s0", "trial_score_key",
    "ONE_ROUND_STRATEGIES", "dulo_strategy", "null_strategy", "rambo_strategy",
    "Offline", "Stream", "UtilityFit", "fit_dulo_utility", "fit_rambo_utility",
    "offline_samples", "stream_key",
    "AUG_DISTANCES", "OTTargets", "class_distance", "interpolate_from_distances",
    "interpolate_utility", "latent_divergence", "make_ot_targets", "ot_targets",
    "random_pair_masks", "subset_utilities",
    "IMBALANCE_MODES", "imbalanced_pool", "noisy_pool",
    "SetNet", "SetOutput", "make_set_net", "masked_mean",
]


for _name, _ctor in ONE_ROUND_STRATEGIES.items():
  register_strategy(_name, _ctor)
