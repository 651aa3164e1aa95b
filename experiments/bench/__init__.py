"""Benchmarks of jal: ``python -m experiments.bench`` (sections), ``experiments.bench.scaling``
and ``experiments.bench.rambo_speed``; every measurement goes through ``bench/timing.py``.

Modules: ``settings`` (sizes and their CPU / accelerator defaults), ``timing`` (the timer),
``data`` (synthetic stand-ins), one module per section (``machine``, ``scores``, ``fit``,
``protocol``), ``suite`` (runs the sections), ``rambo_costs`` (RAMBO unit costs) and the
binaries ``main``, ``scaling``, ``rambo_speed``.
"""
