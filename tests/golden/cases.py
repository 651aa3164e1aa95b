"""Golden cases: every registered strategy on the embedded digits data, and the one-round
RAMBO / DULO / null trials, with fixed seeds.

``python -m tests.golden.cases`` (from the repository root) records ``selections.json`` beside
this file; ``tests/test_golden.py`` reruns every case and compares: selected indices
bit-for-bit, accuracies to 1e-6. Re-record only in a commit that changes results on purpose,
and say why in that commit and in BUILD_NOTES.md.
"""

import functools
import json
import pathlib
import sys

from tests.compile_options import use_suite_compile_options

use_suite_compile_options()  # before jax: goldens are recorded as the suite checks them

import jax  # noqa: E402

import jal  # noqa: E402

GOLDEN = pathlib.Path(__file__).with_name("selections.json")

# The loop cases' MLP width, and a small BRAL-T environment: the digits pool is 1,257 images.
# tests/jal/bralt/test_rl.py uses the same environment, width and padding, so its programs are
# the golden run's (compiled once per test run through the shared XLA cache).
HIDDEN = 32
BRALT = dict(env=dict(n_state_clusters=3, n_label_clusters=3, actions=2, max_points=64,
                       rel_epsilon=1e-2, ot_momentum=1.5, num_samplings=3,
                       steps_per_sampling=4), lam=1.0, pad_to=64, workers=1)
STRATEGY_KWARGS = {
    "random": {}, "margin": {}, "entropy": {}, "least_confidence": {}, "bald": {},
    "coreset": {}, "kmeans": {}, "badge": {},
    "bral_t": BRALT, "bral_t_wo_cl": BRALT, "bral_diffset": BRALT,
    "pseudo_score": {}, "gradnd_gt": {},
    "glister": {}, "similar": {},
    "cluster_margin": {}, "bait": {}, "saal": {}, "activeft": {"iters": 50},
    "lossprediction": {"detach_epoch": 10}, "waal": {"unlabeled_per_epoch": 320},
    "vaal": {"vae_epochs": 1, "unlabeled_per_epoch": 320},
}
CURRICULUM = ("bral_t", "bral_diffset", "pseudo_score", "gradnd_gt")
ONE_ROUND = ("rambo", "dulo", "null")


LOOP = jal.LoopConfig(init_size=30, budget=15, rounds=2)


@functools.cache  # Histories are small; a later test reads the BRAL-T run again
def loop_history(name: str) -> jal.History:
  """The run behind :func:`loop_case` (kept per name: tests may inspect it further)."""
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(HIDDEN,),
                     dropout=0.25 if name == "bald" else 0.0)
  tc = jal.TrainConfig(epochs=20, batch_size=32, superloss=name in CURRICULUM)
  return jal.run_loop(jax.random.key(0), data, net, tc,
                      jal.get_strategy(name, **STRATEGY_KWARGS[name]), LOOP, verbose=False)


def loop_case(name: str) -> dict:
  """Queried indices per round and test accuracies of ``name`` on digits (seed 0)."""
  hist = loop_history(name)
  return {"queried": [r["queried"] for r in hist.rounds[:-1]],
          "test_accuracy": hist.accuracies}


def one_round_case(name: str) -> dict:
  """Selected indices and validation / test accuracy of a one-round trial on digits
  (``rambo_smoke`` settings)."""
  from jal.rambo import BilevelConfig, RamboConfig, run_one_round
  data = jal.data.load("digits")
  net = jal.make_net("mlp", data.x_train.shape[1:], data.num_classes, hidden=(32,))
  tc = jal.TrainConfig(epochs=5, batch_size=64, stop_train_acc=0.99)
  cfg = RamboConfig(k=30, budget=10, k1=20, b=5, n_aug=4, offline_pairs=6, offline_steps=5,
                    m_factor=2, fit_chunk=6, dulo_candidates=20, ot_debiased=False,
                    utility=BilevelConfig(outer_steps=2, inner_steps=3, cg_steps=2))
  res = run_one_round(jax.random.key(0), data, net, tc, cfg, name)
  return {"queried": [res["selected"]], "val_accuracy": res["val_accuracy"],
          "test_accuracy": res["test_accuracy"]}


def run_case(name: str) -> dict:
  return one_round_case(name) if name in ONE_ROUND else loop_case(name)


def all_cases() -> tuple[str, ...]:
  return (*STRATEGY_KWARGS, *ONE_ROUND)


def main(names: list[str]) -> None:
  out = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
  for name in names or all_cases():
    out[name] = run_case(name)
    print(name, out[name].get("test_accuracy"), flush=True)
  GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
  main(sys.argv[1:])
