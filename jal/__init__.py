"""jal: deep batch active learning in JAX/Flax (BRAL-T, RAMBO and classic baselines).

The public façade; each submodule declares its own ``__all__``.

Example:
  >>> import jax, jal
  >>> data = jal.data.load("digits")
  >>> net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes)
  >>> hist = jal.run_loop(jax.random.key(0), data, net, jal.TrainConfig(epochs=5),
  ...                     jal.get_strategy("margin"), jal.LoopConfig(20, 20, 1), verbose=False)
  >>> len(hist.rounds)
  2
"""

from jal import cluster, data, metrics, models, scores, sharding, strategies  # isort: skip
from jal import bralt, rambo  # after strategies: jal.strategies registers BRAL-T's  # isort: skip
from jal.loop import History, LoopConfig, initial_mask, label, run_loop
from jal.models import Net, Variables, make_net
from jal.sharding import make_mesh
from jal.strategies import STRATEGIES, Context, Strategy, get_strategy, select
from jal.train import FitResult, TrainConfig, accuracy, fit, fit_many, predict

__version__ = "0.1.0"

__all__ = [
    "bralt", "cluster", "data", "metrics", "models", "rambo", "scores", "sharding",
    "strategies",
    "make_mesh",
    "History", "LoopConfig", "initial_mask", "label", "run_loop",
    "Net", "Variables", "make_net",
    "STRATEGIES", "Context", "Strategy", "get_strategy", "select",
    "FitResult", "TrainConfig", "accuracy", "fit", "fit_many", "predict",
]
