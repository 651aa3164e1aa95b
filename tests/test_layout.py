"""The house rules of ARCHITECTURE.md, checked on the source: layers only import downwards, no
private name crosses a package boundary, no module grows past 400 lines."""

import ast
import pathlib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]

# Lower layers never import higher ones; a package may import its own layer.
LAYERS = {
    "parallel": 0, "files": 0, "models": 1, "data": 1, "metrics": 1, "scores": 2, "train": 3,
    "cluster": 4, "strategies": 5,
    "bralt": 6, "rambo": 6, "loop": 7,
}
MAX_LINES = 400


def _modules(*roots):
  for root in roots:
    yield from sorted((_REPO / root).rglob("*.py"))


def _imports(path):
  """``(module, names)`` of every ``import`` / ``from ... import`` in ``path``."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.module, [a.name for a in node.names]
    elif isinstance(node, ast.Import):
      for a in node.names:
        yield a.name, []


def _package_of(path):
  rel = path.relative_to(_REPO).with_suffix("").parts
  return rel[1] if rel[0] == "jal" and len(rel) > 1 else rel[0]


def test_layers_import_only_downwards():
  bad = []
  for path in _modules("jal"):
    own = _package_of(path)
    if own not in LAYERS:
      continue
    for module, names in _imports(path):
      parts = module.split(".")
      if parts[0] != "jal":
        continue
      targets = [parts[1]] if len(parts) > 1 else names
      for t in targets:
        if t in LAYERS and LAYERS[t] > LAYERS[own]:
          bad.append(f"{path.relative_to(_REPO)} ({own}) imports jal.{t}")
  assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_package():
  bad = []
  for path in _modules("jal", "experiments", "tests"):
    own = ".".join(path.relative_to(_REPO).parts[:2]) if path.parts[-2] != "jal" else None
    for module, names in _imports(path):
      if not module.startswith("jal"):
        continue
      pkg = ".".join(module.split(".")[:2])
      for name in names:
        if name.startswith("_") and pkg != own:
          bad.append(f"{path.relative_to(_REPO)} imports {name} from {module}")
  assert not bad, "\n".join(bad)


@pytest.mark.parametrize("root", ["jal", "experiments"])
def test_modules_stay_small(root):
  big = [f"{p.relative_to(_REPO)}: {n} lines" for p in _modules(root)
         if (n := len(p.read_text().splitlines())) > MAX_LINES]
  assert not big, "\n".join(big)


def test_the_checks_can_fail(tmp_path):
  # The same parsers on a file that breaks every rule.
  f = tmp_path / "bad.py"
  f.write_text("from jal.train import _run\nimport jal.loop\n")
  assert list(_imports(f)) == [("jal.train", ["_run"]), ("jal.loop", [])]


def test_start_up_imports_nothing_heavy():
  # Every binary and every test subprocess pays `import jal` at start: ott-jax (scipy.stats,
  # jaxopt, matplotlib through `ott.tools`), scipy's clustering and the dataset libraries are
  # imported where they are used.
  import subprocess
  import sys
  heavy = ("ott", "scipy.stats", "scipy.cluster", "matplotlib", "tensorflow",
           "tensorflow_datasets", "torch")
  code = ("import sys, jal, experiments.runtime; "
          f"print([m for m in {heavy!r} if m in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=_REPO, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "[]", out.stdout
