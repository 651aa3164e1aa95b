"""Section builders shared by the protocol configs (this module is not a config itself).

Every config is an ``ml_collections.ConfigDict`` with nested sections; ``experiments/build.py``
turns it into library objects. The keys:

* ``binary``: the binary family the config is for — ``"al"`` (``experiments.al``, ``compare``,
  ``bralt_diagnose``), ``"one_round"`` (``experiments.one_round``, ``rambo_tables``,
  ``rambo_diagnose``), ``"bench"``, ``"scaling"`` or ``"rambo_speed"``. A binary refuses a
  config of another family before doing any work.
* ``seed``: the seed of the run / trial (``jax.random.key(seed)``).
* ``data``: ``name`` (``jal.data.load``), ``val_size`` (``None``: the loader's default),
  ``seed`` (of the val split), ``train_transform`` (one seeded ``jal.data`` transform of the
  train split, the same pool for every trial: ``name`` in ``TRAIN_TRANSFORMS`` and the union of
  their keyword arguments, each transform reading its own) and ``pool`` (RAMBO's R8 settings,
  drawn per trial from ``seed``: ``imbalance`` in ``jal.rambo.IMBALANCE_MODES``,
  ``imbalance_classes``, ``imbalance_fraction``, then ``noise_rate``).
* ``model``: ``name`` (``jal.make_net``), ``dropout`` (BALD gets 0.25 when it is 0) and
  ``kwargs`` (model options such as ``hidden`` or ``stem``).
* ``train``: the ``jal.TrainConfig`` fields; ``superloss`` is ``"auto"`` (SuperLoss for the
  curriculum-learning methods only), ``"true"`` or ``"false"``.
* ``strategy``: ``name`` and ``kwargs`` (those its constructor accepts are passed on, so one
  BRAL-T config also drives the baselines it is compared with; a ``None`` value leaves the
  constructor's default). ``"al"`` configs carry the options of ``STRATEGY_OPTIONS`` unset, so
  that ``--config.strategy.kwargs.<option>=…`` can set them.
* ``loop`` (``"al"``): the ``jal.LoopConfig`` fields, and how ``L₀`` is drawn:
  ``initial_set`` (``jal.data.INITIAL_SETS``: random, or BRAL-T Table 8's twisted_main /
  twisted_rare) with ``initial_minor_fraction`` (the small part's share, 50 / 1,000).
* ``rambo`` (``"one_round"``): the ``jal.rambo.RamboConfig`` fields, ``utility`` holding the
  bilevel / OT / RankNet switches and schedule of ``BilevelConfig``.
"""

from ml_collections import ConfigDict, config_dict

__all__ = ["STRATEGY_OPTIONS", "TRAIN_TRANSFORMS", "al_config", "data_section",
           "one_round_config"]

# Names ``data.train_transform.name`` accepts ("none" or a jal.data transform).
TRAIN_TRANSFORMS = ("none", "keep_probability_imbalance", "long_tail", "class_imbalance",
                    "noisy_labels")


# Strategy options an "al" config carries unset (None: the constructor's default), by type:
# GLISTER's η, SIMILAR's function / η / query / kernel columns, BRAL-T's agent reuse,
# Cluster-Margin's candidates / cluster size / exact-HAC limit, BAIT's λ / oversampling,
# SAAL's mode / ρ / candidates, ActiveFT's optimisation; the learned baselines' (BASELINES.md
# §1–3) LossPrediction detach epoch and extra epochs, WAAL's / VAAL's variant ("authors" |
# "deepalplus") and cap on the unlabeled rows of an epoch, VAAL's epochs; BRAL-T's selection
# readings (issue 16: one global ranking of actions, fill by score) and its OT cost settings
# (Sinkhorn cloud cap, relative ε, over-relaxation: the CPU concessions of the reduced
# protocols, settable on the paper's protocols too). Only the chosen
# strategy's constructor receives the ones it takes.
STRATEGY_OPTIONS = {"step_size": float, "function": str, "eta": float, "query": str,
                    "max_columns": int, "agent_rounds": str, "agent_file": str, "agent_dir": str,
                    "km_factor": float, "cluster_size": int, "hac_points": int, "lam": float,
                    "oversample": int, "mode": str, "rho": float, "pool_subset": int,
                    "iters": int, "lr": float, "temperature": float, "balance": float,
                    "detach_epoch": int, "extra_epochs": int, "variant": str,
                    "unlabeled_per_epoch": int, "vae_epochs": int,
                    "global_ranking": bool, "fill": str, "max_points": int,
                    "rel_epsilon": float, "ot_momentum": float}


def _optional(value, kind):
  """A typed field that may hold ``None`` (overridable from the command line either way)."""
  ref = config_dict.placeholder(kind)
  if value is not None:
    ref.set(kind(value))
  return ref


def data_section(name: str, *, val_size: int | None = None, seed: int = 0,
                 train_transform: dict | None = None) -> ConfigDict:
  """The ``data`` section; ``train_transform`` is ``{"name": ..., **kwargs}`` or ``None``."""
  tt = dict(train_transform or {"name": "none"})
  transform = ConfigDict({
      "name": tt.pop("name"),
      "seed": 0,  # every transform
      "probs": _optional(None, tuple),  # keep_probability_imbalance (None: 0.1 (c + 1))
      "imbalance_ratio": 10.0,  # long_tail
      "class_fraction": 0.3, "remove_fraction": 0.2, "mode": "remove",  # class_imbalance
      "fraction": 0.2,  # noisy_labels
  })
  for k, v in tt.items():
    transform[k] = v if k != "probs" else tuple(v)
  return ConfigDict({
      "name": name, "val_size": _optional(val_size, int), "seed": int(seed),
      "train_transform": transform,
      "pool": {"imbalance": "none", "imbalance_classes": 0.3, "imbalance_fraction": 0.2,
               "noise_rate": 0.0},
  })


def _train_section(epochs, batch_size, learning_rate, optimizer, stop_train_acc, superloss,
                   superloss_tau, superloss_lam, augment) -> ConfigDict:
  if isinstance(superloss, bool):
    superloss = "true" if superloss else "false"
  return ConfigDict({
      "epochs": int(epochs), "batch_size": int(batch_size),
      "learning_rate": float(learning_rate), "optimizer": optimizer,
      "stop_train_acc": _optional(stop_train_acc, float), "superloss": superloss,
      "superloss_tau": _optional(superloss_tau, float), "superloss_lam": float(superloss_lam),
      "augment": augment,
  })


def al_config(*, dataset: str, model: str, model_kwargs: dict, strategy: str,
              init_size: int, budget: int, rounds: int, chunk_size: int, epochs: int,
              batch_size: int, learning_rate: float = 1e-3, optimizer: str = "adam",
              stop_train_acc: float | None = None, superloss: str | bool = False,
              superloss_tau: float | None = None, superloss_lam: float = 1.0,
              augment: str = "none", dropout: float = 0.0, strategy_kwargs: dict | None = None,
              seed: int = 0, val_size: int | None = None, data_seed: int = 0,
              train_transform: dict | None = None) -> ConfigDict:
  """A config of the ``"al"`` family (``experiments.al``, ``compare``, ``bralt_diagnose``)."""
  return ConfigDict({
      "binary": "al", "seed": int(seed),
      "data": data_section(dataset, val_size=val_size, seed=data_seed,
                           train_transform=train_transform),
      "model": {"name": model, "dropout": float(dropout), "kwargs": dict(model_kwargs)},
      "train": _train_section(epochs, batch_size, learning_rate, optimizer, stop_train_acc,
                              superloss, superloss_tau, superloss_lam, augment),
      "strategy": {"name": strategy, "kwargs": {
          **{k: _optional(None, kind) for k, kind in STRATEGY_OPTIONS.items()},
          **dict(strategy_kwargs or {})}},
      "loop": {"init_size": int(init_size), "budget": int(budget), "rounds": int(rounds),
               "chunk_size": int(chunk_size), "initial_set": "random",
               "initial_minor_fraction": 0.05},
  })


def one_round_config(*, dataset: str, model: str, model_kwargs: dict, strategy: str = "rambo",
                     k: int, budget: int, k1: int, b: int, n_aug: int, offline_pairs: int,
                     offline_steps: int, m_factor: int, fit_chunk: int, dulo_candidates: int,
                     epochs: int, batch_size: int, learning_rate: float = 1e-3,
                     optimizer: str = "adam", stop_train_acc: float | None = 0.99,
                     extractor: str = "auto", ot_debiased: bool = True,
                     aug_from_next: bool = True, offline_in_d: bool = False,
                     aug_distance: str = "euclidean", bilevel: bool = True, ot: bool = True,
                     ranknet: bool = True, outer_steps: int = 20, inner_steps: int = 100,
                     cg_steps: int = 10, hypergrad: str = "cg", seed: int = 0,
                     val_size: int | None = None, data_seed: int = 0) -> ConfigDict:
  """A config of the ``"one_round"`` family (``experiments.one_round``, ``rambo_tables``,
  ``rambo_diagnose``): ``jal.rambo.run_one_round`` with ``RamboConfig`` from ``rambo``."""
  return ConfigDict({
      "binary": "one_round", "seed": int(seed),
      "data": data_section(dataset, val_size=val_size, seed=data_seed),
      "model": {"name": model, "dropout": 0.0, "kwargs": dict(model_kwargs)},
      "train": _train_section(epochs, batch_size, learning_rate, optimizer, stop_train_acc,
                              False, None, 1.0, "none"),
      "strategy": {"name": strategy},
      "rambo": {
          "k": int(k), "budget": int(budget), "k1": int(k1), "b": int(b), "n_aug": int(n_aug),
          "offline_pairs": int(offline_pairs), "offline_steps": int(offline_steps),
          "m_factor": int(m_factor), "fit_chunk": int(fit_chunk), "extractor": extractor,
          "dulo_candidates": int(dulo_candidates), "ot_debiased": bool(ot_debiased),
          "aug_from_next": bool(aug_from_next), "offline_in_d": bool(offline_in_d),
          "aug_distance": aug_distance,
          "utility": {"bilevel": bool(bilevel), "ot": bool(ot), "ranknet": bool(ranknet),
                      "outer_steps": int(outer_steps), "inner_steps": int(inner_steps),
                      "cg_steps": int(cg_steps), "hypergrad": hypergrad},
      },
  })
