"""experiments/runtime.py and the layout rules of the experiment binaries."""

import ast
import pathlib

import jax
import pytest

import experiments
from experiments import configs, runtime

_ROOT = pathlib.Path(experiments.__file__).parent
# Binaries: modules run with python -m (flags live only in these).
BINARIES = ("al", "compare", "one_round", "rambo_tables", "rambo_diagnose", "bralt_diagnose",
            "bench.main", "bench.scaling", "bench.rambo_speed", "bench.baselines",
            "bench.submodular", "bench.convs", "bench.resnet")


def _module(name: str) -> pathlib.Path:
  return _ROOT / (name.replace(".", "/") + ".py")


def _imports(path: pathlib.Path) -> set[str]:
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module:
      out.add(node.module)
      out.update(f"{node.module}.{a.name}" for a in node.names)
    elif isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
  return out


def test_no_binary_imports_another():
  for name in BINARIES:
    imported = _imports(_module(name))
    others = {f"experiments.{b}" for b in BINARIES if b != name}
    assert not imported & others, (name, imported & others)


def test_flags_live_only_in_binaries_and_runtime():
  allowed = {_module(b) for b in BINARIES} | {_ROOT / "runtime.py"}
  for path in _ROOT.rglob("*.py"):
    if path in allowed or "configs" in path.parts:
      continue
    assert "DEFINE_" not in path.read_text(), path
    assert "allow_override" not in path.read_text(), path


def test_every_module_is_small():
  for path in _ROOT.rglob("*.py"):
    assert len(path.read_text().splitlines()) < 400, path


def test_bare_config_names_resolve_to_paths(tmp_path):
  argv = runtime.resolve_config_argv(["x", "--config=smoke", "--config.seed=1", "--workdir=w"])
  assert argv == ["x", f"--config={configs.path('smoke')}", "--config.seed=1", "--workdir=w"]
  assert runtime.resolve_config_argv(["x", "--config", "rambo_smoke:a"])[2] == (
      f"{configs.path('rambo_smoke')}:a")
  path = str(tmp_path / "mine.py")
  assert runtime.resolve_config_argv(["x", f"--config={path}"]) == ["x", f"--config={path}"]
  assert runtime.resolve_config_argv(["x", "--config=experiments/configs/smoke.py"])[1] == (
      "--config=experiments/configs/smoke.py")
  with pytest.raises(ValueError, match="unknown config 'nope'"):
    runtime.resolve_config_argv(["x", "--config=nope"])


def test_compilation_cache_dir_and_opt_out(tmp_path, monkeypatch):
  old = jax.config.jax_compilation_cache_dir
  try:
    assert runtime.enable_compilation_cache("") is None
    assert jax.config.jax_compilation_cache_dir == old
    monkeypatch.setenv("JAL_COMPILATION_CACHE", str(tmp_path))
    assert runtime.enable_compilation_cache() == str(tmp_path)
    assert jax.config.jax_compilation_cache_dir == str(tmp_path)
  finally:
    jax.config.update("jax_compilation_cache_dir", old)


def test_unknown_override_names_the_field_and_its_siblings():
  smoke = str(configs.path("smoke"))
  argv = ["al", "--config=smoke_ignored", f"--config={smoke}", "--config.seed=2"]
  assert runtime.unknown_override(argv, "unused") is None  # every path exists
  out = runtime.unknown_override([*argv, "--config.loop.nope=1"], "unused")
  assert out == ("--config.loop.nope: loop has no field 'nope' (it has: budget, chunk_size, "
                 "init_size, initial_minor_fraction, initial_set, rounds)")
  # Without --config the default config is the one read.
  assert runtime.unknown_override(["al", "--config.trian.epochs=1"], smoke).startswith(
      "--config.trian.epochs: the config has no field 'trian' (it has: binary, data, ")
  assert runtime.unknown_override(["al", "--config.seed.x=1"], smoke) == (
      "--config.seed.x: seed is a value, not a section")
  assert runtime.unknown_override(["al", "--config.x=1"], "/nonexistent.py") is None
