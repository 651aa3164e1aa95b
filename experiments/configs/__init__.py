"""One ``ml_collections.ConfigDict`` config per protocol (see ``base.py`` for the sections).

A binary takes ``--config=<path to a file here>`` (or the bare protocol name) and overrides
with ``--config.<section>.<key>=value``, as the flax examples and big_vision do::

  python -m experiments.al --config=experiments/configs/bralt_fmnist_reduced.py \
      --config.seed=1 --config.data.train_transform.name=long_tail

``names(binary)`` lists the configs of a binary family, ``get(name)`` returns a fresh config
(what the tests use), ``path(name)`` the file a bare name stands for.
"""

import functools
import importlib
import pathlib

from ml_collections import ConfigDict

__all__ = ["CONFIG_DIR", "FAMILIES", "get", "names", "path"]

CONFIG_DIR = pathlib.Path(__file__).resolve().parent

# Binary family of a config (``config.binary``) -> the binaries that accept it.
FAMILIES = {
    "al": ("al", "compare", "bralt_diagnose"),
    "one_round": ("one_round", "rambo_tables", "rambo_diagnose"),
    "bench": ("bench",),
    "scaling": ("bench.scaling",),
    "rambo_speed": ("bench.rambo_speed",),
}


@functools.cache
def _all_names() -> tuple[str, ...]:
  """Modules of this directory that define ``get_config`` (helpers such as ``base`` do not)."""
  out = []
  for f in sorted(CONFIG_DIR.glob("*.py")):
    if f.stem != "__init__" and "def get_config(" in f.read_text():
      out.append(f.stem)
  return tuple(out)


def names(binary: str | None = None) -> tuple[str, ...]:
  """Config names, all or those whose ``config.binary`` is ``binary``."""
  if binary is None:
    return _all_names()
  return tuple(n for n in _all_names() if get(n).binary == binary)


def path(name: str) -> pathlib.Path:
  """The file of config ``name``.

  Raises:
    ValueError: if no config has that name.
  """
  if name not in _all_names():
    raise ValueError(f"unknown config {name!r}; choose from {', '.join(_all_names())} "
                     "(or pass the path of a config file)")
  return CONFIG_DIR / f"{name}.py"


def get(name: str, arg: str | None = None) -> ConfigDict:
  """A fresh, unlocked config ``name`` (``get_config(arg)`` when ``arg`` is given)."""
  path(name)  # validates the name
  module = importlib.import_module(f"experiments.configs.{name}")
  return module.get_config() if arg is None else module.get_config(arg)
