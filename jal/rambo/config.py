"""RAMBO's one-round settings (SPEC §2.2 and the §2.5 REC readings) and the ablation grid."""

import dataclasses
from collections.abc import Mapping
from typing import Any

from jal.rambo.bilevel import BilevelConfig
from jal.rambo.samples import AUG_DISTANCES

__all__ = ["RamboConfig", "ABLATIONS", "as_rambo_config", "check_refinement"]

# (bilevel, OT, RankNet) of the 8 rows of Tables 3/4.
ABLATIONS = tuple((b, o, r) for b in (True, False) for o in (True, False) for r in (True, False))


@dataclasses.dataclass(frozen=True)
class RamboConfig:
  """One-round settings (defaults: MNIST/FMNIST of B.7 with the SPEC REC readings).

  ``k`` and ``budget`` are the protocol's (``run_one_round`` runs the loop with
  ``init_size=k, budget=budget, rounds=1``); the strategies read |S₀| from the labeled set
  they are given and B from the budget they are asked for.

  Attributes:
    k: |S₀|.
    budget: B.
    k1: |S₀′|, the start of the iterative refinement.
    b: batch size of both the refinement and greedy-margin (τ₁ = (k − k1) / b).
    n_aug: n, augmented pairs per iteration (R4).
    offline_pairs: N, pairs with ground-truth utilities for û₀ (R3).
    offline_steps: full-batch Adam steps fitting û₀ (plain training, R7: parameters only).
    offline_bilevel: fit û₀ with the bilevel scheme instead.
    offline_in_d: keep the offline pairs (true utilities) in D for every refinement iteration
      (R7 alternative; REC: D₀ = {}, the offline pairs only warm-start the parameters).
    m_factor: M = m_factor · b (R1).
    aug_from_next: draw augmented pairs from S_{i+1} (R2 REC) instead of S_i.
    fit_chunk: classifiers evaluated together on the validation set.
    extractor: ψ of the utility model (``"auto"``, ``"cnn"``, ``"mlp"``).
    utility: bilevel/OT/RankNet switches and the schedule (R6: 20 outer steps per iteration).
    dulo_candidates: DULO's random candidates per block.
    ot_debiased: OT targets as Sinkhorn divergences (SPEC REC) or plain entropic OT costs.
    aug_distance: d(ξ_j, S_i) of Eq. 4 (R5): ``"euclidean"`` between pooled φ (REC) or
      ``"sinkhorn"``, the Sinkhorn divergence between the per-element latent embeddings ψ of
      ξ_j and S_i (footnote 1; ``samples.latent_divergence``, ε = 0.1 · mean cost over S₀).
  """
  k: int = 200
  budget: int = 500
  k1: int = 50
  b: int = 50
  n_aug: int = 50
  offline_pairs: int = 500
  offline_steps: int = 500
  offline_bilevel: bool = False
  offline_in_d: bool = False
  m_factor: int = 10
  aug_from_next: bool = True
  fit_chunk: int = 50
  extractor: str = "auto"
  utility: BilevelConfig = BilevelConfig()
  dulo_candidates: int = 500
  ot_debiased: bool = True
  aug_distance: str = "euclidean"

  def __post_init__(self):
    if self.aug_distance not in AUG_DISTANCES:
      raise ValueError(f"aug_distance must be one of {AUG_DISTANCES}, got {self.aug_distance!r}")
    check_refinement(self.k, self.k1, self.b)
    for name in ("budget", "n_aug", "offline_pairs", "offline_steps", "m_factor", "fit_chunk",
                 "dulo_candidates"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"rambo.{name} must be >= 1, got {getattr(self, name)}")
    if self.budget % self.b:
      raise ValueError(f"budget {self.budget} must be a multiple of b = {self.b}")


def check_refinement(k: int, k1: int, b: int) -> None:
  """Raises ``ValueError`` unless S₀′ ⊂ S₁ ⊂ … ⊂ S₀ fits: ``2 <= k1 < k``, ``b | k − k1``."""
  if (k - k1) % b or k1 < 2 or k1 >= k:
    raise ValueError(f"need 2 <= k1 < k and (k - k1) % b == 0, got k={k}, k1={k1}, b={b}")


def as_rambo_config(cfg: "RamboConfig | Mapping[str, Any] | None" = None,
                    **fields: Any) -> RamboConfig:
  """A ``RamboConfig`` from a config, a flat mapping of its fields, or keyword fields.

  ``fields`` override ``cfg``; ``utility`` may be a ``BilevelConfig`` or a mapping of its
  fields (applied to ``cfg.utility``).

  Example:
    >>> as_rambo_config(k=30, budget=10, k1=20, b=5, utility={"outer_steps": 2}).utility.outer_steps
    2
  """
  if isinstance(cfg, Mapping):
    fields, cfg = {**cfg, **fields}, None
  cfg = RamboConfig() if cfg is None else cfg
  utility = fields.pop("utility", None)
  if isinstance(utility, Mapping):
    utility = dataclasses.replace(cfg.utility, **utility)
  if utility is not None:
    fields["utility"] = utility
  return dataclasses.replace(cfg, **fields) if fields else cfg
