"""Training the target model: config, the epoch kernel, ``fit`` / ``fit_many`` /
``fit_subsets`` and chunked inference."""

from jal.train import epoch
from jal.train.config import TrainConfig, make_optimizer
from jal.train.epoch import TrainState
from jal.train.inference import accuracy, predict
from jal.train.subsets import fit_subsets
from jal.train.trainer import FitResult, all_finite, fit, fit_many

__all__ = ["TrainConfig", "TrainState", "FitResult", "fit", "fit_many", "fit_subsets",
           "predict", "accuracy", "make_optimizer", "epoch", "all_finite"]
