"""Alias kept for old command lines: ``python -m experiments.benchmark`` runs
``python -m experiments.bench`` (its flags are the new ``--config.*`` ones)."""

import runpy

if __name__ == "__main__":
  runpy.run_module("experiments.bench", run_name="__main__", alter_sys=True)
