"""The baselines that learn something of their own besides the classifier
(BASELINES.md §1–3): LossPrediction / LLAL and WAAL train with the classifier (their own
``Strategy.fit``), VAAL trains a VAE and a discriminator at query time (in ``score``).

Registered as ``lossprediction``, ``waal`` and ``vaal``.
"""

from jal.strategies.learned.loss_prediction import (
  LossPredConfig,
  fit_loss_prediction,
  lossprediction_strategy,
  predicted_losses,
  ranking_loss,
)
from jal.strategies.learned.vaal import VaalConfig, train_vaal, vaal_scores, vaal_strategy
from jal.strategies.learned.vae_nets import make_vae
from jal.strategies.learned.waal import WaalConfig, fit_waal, waal_scores, waal_strategy
from jal.strategies.registry import register_strategy

__all__ = ["LossPredConfig", "fit_loss_prediction", "lossprediction_strategy",
           "predicted_losses", "ranking_loss", "WaalConfig", "fit_waal", "waal_scores",
           "waal_strategy", "VaalConfig", "train_vaal", "vaal_scores", "vaal_strategy",
           "make_vae", "LEARNED_STRATEGIES"]

LEARNED_STRATEGIES = {"lossprediction": lossprediction_strategy, "waal": waal_strategy,
                      "vaal": vaal_strategy}

for _name, _ctor in LEARNED_STRATEGIES.items():
  register_strategy(_name, _ctor)
