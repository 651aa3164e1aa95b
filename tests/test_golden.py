"""What jal computes must not change by accident: every strategy's recorded selections.

Reruns each case of ``tests/golden/cases.py`` and compares it with ``selections.json``:
queried indices bit-for-bit, accuracies to 1e-6.
"""

import json

import numpy as np
import pytest

from tests.golden import cases

_GOLDEN = json.loads(cases.GOLDEN.read_text())


def test_every_registered_strategy_has_a_golden():
  import jal
  assert set(jal.STRATEGIES) <= set(_GOLDEN), sorted(set(jal.STRATEGIES) - set(_GOLDEN))


# The BRAL-T ablations run the machinery of bral_t (kept in the default suite) with another
# score or trust group: in the slow suite, with the one-round RAMBO and DULO (null stays) and
# VAAL (its VAE's compile alone takes a minute on 2 cores).
_SLOW = ("bral_t_wo_cl", "bral_diffset", "rambo", "vaal", "dulo")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in cases.all_cases()])
def test_golden_selection(name):
  want, got = _GOLDEN[name], cases.run_case(name)
  assert set(got) == set(want)
  for k in want:
    if k == "queried":
      assert len(got[k]) == len(want[k])
      for r, (g, w) in enumerate(zip(got[k], want[k])):
        assert g == w, f"{name}: round {r} queried other indices"
    else:
      np.testing.assert_allclose(got[k], want[k], atol=1e-6, err_msg=f"{name}: {k}")
