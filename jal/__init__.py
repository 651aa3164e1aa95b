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

from jal import (
  bralt,
  cluster,
  data,
  loop,
  metrics,
  models,
  parallel,
  rambo,
  scores,
  strategies,
  train,
)
from jal.loop import History, LoopConfig, initial_mask, label, run_loop
from jal.models import Net, Variables, make_net
from jal.parallel import make_mesh
from jal.strategies import STRATEGIES, Context, Strategy, get_strategy, select, select_timed
from jal.train import FitResult, TrainConfig, accuracy, fit, fit_many, fit_subsets, predict

# The pre-0.2 name of ``jal.parallel`` (one release): ``from jal import sharding`` still works.
sharding = parallel

__version__ = "0.1.0"

__all__ = [
    "bralt", "cluster", "data", "loop", "metrics", "models", "parallel", "rambo", "scores",
    "strategies", "train",
    "make_mesh",
    "History", "LoopConfig", "initial_mask", "label", "run_loop",
    "Net", "Variables", "make_net",
    "STRATEGIES", "Context", "Strategy", "get_strategy", "select", "select_timed",
    "FitResult", "TrainConfig", "accuracy", "fit", "fit_many", "fit_subsets", "predict",
]
