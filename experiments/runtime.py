"""What every experiment binary shares at run time: the ``--config`` flag, the compilation
cache, multi-host initialisation, the mesh of ``--num_devices`` and the main wrapper.

A binary is a thin module of flags::

  _CONFIG = runtime.define_config("al", default="default")
  ...
  if __name__ == "__main__":
    runtime.run(_main, "al", _CONFIG)

``runtime.run`` resolves a bare ``--config=<name>`` to ``experiments/configs/<name>.py``,
refuses a config of another binary family, initialises JAX (multi-host, cache) and turns a
``FileNotFoundError`` / ``ValueError`` into a one-line ``error: ...`` exit.
"""

import importlib.util
import os
import re
import sys
from collections.abc import Callable

import jax
from absl import app, flags
from ml_collections import config_flags

from experiments import build, configs
from jal import parallel

__all__ = ["define_config", "enable_compilation_cache", "mesh", "resolve_config_argv", "run",
           "unknown_override"]

# Scale-out flags shared by every binary (defined once, here).
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Call jax.distributed.initialize() first (multi-host; default: env "
    "JAL_DISTRIBUTED=1). Only process 0 writes files and logs.")
_NUM_DEVICES = flags.DEFINE_integer(
    "num_devices", None, "Shard pool and minibatches over a 'data' mesh of this many devices "
    "(-1 = all devices, of every host); unset = one device, no mesh.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None, "Directory of JAX's persistent compilation cache: programs "
    "compiled once are reused by later runs (other seeds, strategies, reruns). Default: env "
    "JAL_COMPILATION_CACHE, else ~/.cache/jal/xla; '' disables it.")


_DEFAULT_CONFIG = {}  # "path": the file of the binary's default config (define_config)


def define_config(binary: str, default: str) -> flags.FlagHolder:
  """Defines ``--config`` (an ``ml_collections`` config file) for ``binary``.

  Args:
    binary: the binary's module name under ``experiments`` (for the help text).
    default: the default config's name; the flag's default is its absolute path, so the
      binary works from any directory.
  """
  family = next(f for f, bins in configs.FAMILIES.items() if binary in bins)
  _DEFAULT_CONFIG["path"] = str(configs.path(default))
  try:  # without --config, ml_collections applies the overrides here, at import
    return config_flags.DEFINE_config_file(
        "config", _DEFAULT_CONFIG["path"],
        f"Config file (binary={family!r}): a path or a name of experiments/configs "
        f"({', '.join(configs.names(family))}); override fields with --config.<key>=value.")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(_override_error(sys.argv, e))


def resolve_config_argv(argv: list[str]) -> list[str]:
  """``argv`` with a bare ``--config=<name>`` replaced by the path of that config.

  Raises:
    ValueError: for a name that is neither an existing file nor a config.
  """
  out = list(argv)
  for i, arg in enumerate(out):
    m = re.fullmatch(r"(--?config=)(.*)", arg)
    if m:
      prefix, value = m.groups()
    elif re.fullmatch(r"--?config", arg) and i + 1 < len(out):
      prefix, value = None, out[i + 1]
    else:
      continue
    file, sep, rest = value.partition(":")
    if os.path.exists(file) or "/" in file or file.endswith(".py"):
      continue
    resolved = str(configs.path(file)) + sep + rest
    if prefix is None:
      out[i + 1] = resolved
    else:
      out[i] = prefix + resolved
  return out


def enable_compilation_cache(path: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache in ``path`` (see ``--compilation_cache``).

  Returns:
    The directory used, or ``None`` when disabled (``path == ""``).
  """
  if path is None:
    path = os.environ.get("JAL_COMPILATION_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "jal", "xla"))
  if not path:
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  # Only programs worth caching: a cache read costs ~0.1 s.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path


def mesh():
  """The ``data`` mesh asked for by ``--num_devices`` (``None`` when unset)."""
  n = _NUM_DEVICES.value
  if n is None:
    return None
  return parallel.make_mesh(None if n < 0 else n)


def _config_value(config_flag: flags.FlagHolder):
  try:
    config = config_flag.value
    config.get("binary")  # a config that failed to load raises here
  except (OSError, AttributeError) as e:
    raise ValueError(f"cannot load --config={flags.FLAGS[config_flag.name].config_filename}: "
                     f"{str(e).splitlines()[0]}") from e
  return config


def run(body: Callable[[], object], binary: str,
        config_flag: flags.FlagHolder | None = None) -> None:
  """``app.run`` of ``body`` for ``binary`` (its module name under ``experiments``).

  Before any JAX work: checks that ``--config`` is of ``binary``'s family, initialises
  multi-host JAX (``--distributed``) and the compilation cache. ``FileNotFoundError`` and
  ``ValueError`` (bad flags, config or data) end the program with ``error: <message>``.
  """
  try:
    # ml_collections reads sys.argv itself (the --config.<key> overrides).
    sys.argv = resolve_config_argv(sys.argv)
  except ValueError as e:
    sys.exit(f"error: {e}")

  started = []

  def main(argv):
    del argv
    started.append(True)
    try:
      if config_flag is not None:
        config = _config_value(config_flag)
        build.check_binary(config, binary)
        build.validate(config)  # every setting, before any work
      # Before any JAX computation: multi-host needs the coordinator first.
      parallel.maybe_initialize_distributed(_DISTRIBUTED.value)
      enable_compilation_cache(_COMPILATION_CACHE.value)
      body()
    except (FileNotFoundError, ValueError) as e:
      sys.exit(f"error: {e}")

  try:
    app.run(main, argv=sys.argv)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    if started:
      raise
    sys.exit(_override_error(sys.argv, e))


def _override_error(argv: list[str], e: Exception) -> str:
  """The one-line message for a ``--config.<path>=…`` override that ml_collections refused
  with ``e``: a field the config does not have (named, with its siblings) or a bad value."""
  if isinstance(e, (AttributeError, KeyError)):
    missing = unknown_override(argv, _DEFAULT_CONFIG.get("path", ""))
    if missing:
      return f"error: bad --config override (no such field): {missing}"
  what = "no such field" if isinstance(e, (AttributeError, KeyError)) else "bad value"
  return f"error: bad --config override ({what}): {str(e).strip().splitlines()[-1]}"


def unknown_override(argv: list[str], default_config: str) -> str | None:
  """Names the first ``--config.<path>=…`` of ``argv`` whose field the config (``--config``'s
  file, else ``default_config``) does not have, with the fields its parent has; ``None`` when
  every path exists or the config cannot be loaded."""
  file = default_config
  overrides = []
  for arg in argv[1:]:
    m = re.fullmatch(r"--?config(\.[^=]+)?=(.*)", arg)
    if m and m.group(1):
      overrides.append(m.group(1)[1:])
    elif m:
      file = m.group(2)
  try:
    spec = importlib.util.spec_from_file_location("_jal_config", file.partition(":")[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
  except Exception:  # a config that does not load is reported as such elsewhere
    return None
  for path in overrides:
    node, parent = config, []
    for key in path.split("."):
      where = ".".join(parent) or "the config"
      if not hasattr(node, "keys"):
        return f"--config.{path}: {where} is a value, not a section"
      if key not in node:
        return (f"--config.{path}: {where} has no field {key!r} "
                f"(it has: {', '.join(sorted(node.keys()))})")
      node, parent = node[key], [*parent, key]
  return None
