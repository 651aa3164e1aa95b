"""Scaling benchmark (``python -m experiments.bench.scaling``): device and pool-size scaling.

``part``: all, devices or pool; ``devices``: device counts (fake CPU devices, one process
each); ``pool_sizes`` × ``methods`` (margin, coreset, badge, bralt): one process each, on
synthetic embeddings of width ``dim``; ``timeout``: seconds per worker process.
"""

from ml_collections import ConfigDict


def get_config():
  return ConfigDict({
      "binary": "scaling", "part": "all", "devices": (1, 2, 4, 8),
      "pool_sizes": (10_000, 100_000, 1_000_000),
      "methods": ("margin", "coreset", "badge", "bralt"), "budget": 100, "n_labeled": 1000,
      "dim": 32, "chunk_size": 64, "timeout": 120})
