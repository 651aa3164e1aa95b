"""``python -m experiments.bench``: the accelerator benchmark (``experiments/bench/main.py``)."""

from experiments.bench import main

main.run()
