"""Reusing BRAL-T's agent (the reward net R_φ) across AL rounds and across runs.

BRAL-T trains a fresh reward net in every AL round. Its App. C.3 ("Agent Reuse", Table 7)
trains one agent in the first round and reuses it for rounds 1–20, then a second one for
rounds 21–40 (CIFAR10-imb): ``agent_rounds=(0, 20)`` of ``bral_t_strategy``. An agent can also
be saved by one run (``agent_dir``) and reused by another (``agent_file``).

An agent is carried as the strategy's state (a flat dict of arrays, so the loop checkpoints it
and a killed run resumes with the same agent) and saved as the same dict in msgpack
(``flax.serialization``). Only what prediction needs is kept: the MLP weights and the input /
target normaliser; the optimiser state is re-initialised on load (it is never stepped again).
"""

import os
import pathlib

import numpy as np
import optax
from flax import serialization

from jal.bralt import reward_net as rn
from jal.files import atomic_write

__all__ = ["parse_rounds", "to_state", "from_state", "save_agent", "load_agent",
           "check_embed_dim", "agent_path"]


def parse_rounds(rounds) -> tuple[int, ...] | None:
  """``agent_rounds`` as sorted distinct ints (``None`` / ``""`` stay ``None``).

  Accepts an int, a sequence of ints or a comma-separated string (``"0,20"``, as a config
  override writes it).

  Raises:
    ValueError: for negative or non-integer rounds.
  """
  if rounds is None or (isinstance(rounds, str) and not rounds.strip()):
    return None
  if isinstance(rounds, str):
    items = [r for r in rounds.replace(" ", "").split(",") if r]
  elif isinstance(rounds, (int, np.integer)):
    items = [rounds]
  else:
    items = list(rounds)
  try:
    out = sorted({int(r) for r in items})
  except (TypeError, ValueError):
    raise ValueError(f"agent_rounds must be round numbers, got {rounds!r}") from None
  if not out or out[0] < 0 or any(int(r) != float(r) for r in items):
    raise ValueError(f"agent_rounds must be non-negative integers, got {rounds!r}")
  return tuple(out)


def to_state(model: rn.RewardModel) -> dict:
  """The reward net as a flat dict of NumPy arrays (``w0, b0, w1, …, mean, std, scale``)."""
  out = {}
  for i, (w, b) in enumerate(model.params):
    out[f"w{i}"], out[f"b{i}"] = np.asarray(w), np.asarray(b)
  out.update(mean=np.asarray(model.norm.mean), std=np.asarray(model.norm.std),
             scale=np.asarray(model.norm.scale))
  return out


def from_state(state: dict, learning_rate: float = 0.01) -> rn.RewardModel:
  """The :class:`~jal.bralt.reward_net.RewardModel` of :func:`to_state`'s dict."""
  n_layers = sum(1 for k in state if k.startswith("w") and k[1:].isdigit())
  params = [(np.asarray(state[f"w{i}"]), np.asarray(state[f"b{i}"])) for i in range(n_layers)]
  norm = rn.Normalizer(np.asarray(state["mean"]), np.asarray(state["std"]),
                       np.asarray(state["scale"]))
  return rn.RewardModel(params, optax.sgd(learning_rate).init(params), norm)


def check_embed_dim(state: dict, embed_dim: int, where: str = "the agent") -> None:
  """Raises ``ValueError`` unless the agent takes states/actions of an ``embed_dim`` pool
  (its input is ``4D + 2D`` wide)."""
  width = int(np.shape(state["w0"])[0])
  if width != 6 * embed_dim:
    raise ValueError(f"{where} was trained on {width // 6}-dimensional embeddings, but this "
                     f"model's are {embed_dim}-dimensional")


def agent_path(directory: str | os.PathLike, round_: int) -> pathlib.Path:
  """Where ``agent_dir`` keeps the agent trained in round ``round_``."""
  return pathlib.Path(directory) / f"agent_round{int(round_)}.msgpack"


def save_agent(path: str | os.PathLike, state: dict) -> pathlib.Path:
  """Writes :func:`to_state`'s dict (atomically) and returns the path."""
  return atomic_write(path, serialization.msgpack_serialize(
      {k: np.asarray(v) for k, v in state.items()}))


def load_agent(path: str | os.PathLike) -> dict:
  """Reads an agent written by :func:`save_agent`.

  Raises:
    FileNotFoundError: when ``path`` does not exist.
    ValueError: when it is not an agent file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"BRAL-T agent file {str(path)!r} does not exist (agent_file)")
  try:
    state = serialization.msgpack_restore(path.read_bytes())
  except Exception as e:  # msgpack raises several types on a foreign file
    raise ValueError(f"{path} is not a BRAL-T agent file ({type(e).__name__})") from e
  if not isinstance(state, dict) or not {"w0", "b0", "mean", "std", "scale"} <= set(state):
    raise ValueError(f"{path} is not a BRAL-T agent file (missing reward-net arrays)")
  return {k: np.asarray(v) for k, v in state.items()}
