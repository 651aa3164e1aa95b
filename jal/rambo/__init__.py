"""RAMBO (ranking-based AL via multitask bilevel optimisation) and DULO, one-round protocols.

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
from jal.rambo.hypergrad import (
  HYPERGRADS,
  custom_root_hypergrad,
  implicit_solution,
  itd_hypergrad,
)
from jal.rambo.losses import ot_loss, rank_loss, rank_target, regression_loss, total_loss
from jal.rambo.protocol import (
  ABLATIONS,
  BASELINES,
  Offline,
  RamboConfig,
  prepare_offline,
  run_baseline,
  run_dulo,
  run_null,
  run_one_round,
  run_rambo,
  trial_s0,
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
from jal.rambo.utility_model import SetNet, SetOutput, make_set_net, masked_mean

__all__ = [
    "GreedyTrace", "dulo_select", "greedy_margin", "null_select", "rambo_select", "smallest_margin",
    "BilevelConfig", "PairData", "implicit_hypergrad", "init_lambda", "regularizer",
    "split_by_length", "train_bilevel", "train_plain",
    "HYPERGRADS", "custom_root_hypergrad", "implicit_solution", "itd_hypergrad",
    "ot_loss", "rank_loss", "rank_target", "regression_loss", "total_loss",
    "ABLATIONS", "BASELINES", "Offline", "RamboConfig", "prepare_offline", "run_baseline",
    "run_dulo", "run_null", "run_one_round", "run_rambo", "trial_s0",
    "AUG_DISTANCES", "OTTargets", "class_distance", "interpolate_from_distances",
    "interpolate_utility", "latent_divergence", "make_ot_targets", "ot_targets",
    "random_pair_masks", "subset_utilities",
    "IMBALANCE_MODES", "imbalanced_pool", "noisy_pool",
    "SetNet", "SetOutput", "make_set_net", "masked_mean",
]
