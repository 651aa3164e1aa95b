"""The test suite's XLA compile options, set before jax is imported.

XLA:CPU's backend optimisation level 0: the suite compiles hundreds of small programs and runs
each briefly, so compiling dominates its time, and level 0 compiles them faster (the whole
default suite beside a 2-core background job: 1,228 s at the default level, 837 s at level 0).
``tests/conftest.py`` applies it to every test process, its child processes inherit it
(``tests/child_env.py``), and ``python -m tests.golden.cases`` records the golden selections
under it, so goldens are recorded and checked with the same compiler. ``JAL_TEST_XLA_OPT=default``
keeps XLA's default level (then LossPrediction's slow golden, recorded at level 0, differs).
"""

import os

FLAG = "--xla_backend_optimization_level=0"


def use_suite_compile_options() -> None:
  """Adds :data:`FLAG` to ``XLA_FLAGS`` unless the caller set a level or opted out."""
  flags = os.environ.get("XLA_FLAGS", "")
  if os.environ.get("JAL_TEST_XLA_OPT", "0") != "default" and (
      "xla_backend_optimization_level" not in flags):
    os.environ["XLA_FLAGS"] = (flags + " " + FLAG).strip()
