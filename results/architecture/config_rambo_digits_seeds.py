"""RAMBO vs Random on the rambo_digits default, through the binaries' own code path."""
import json, sys, time
sys.path.insert(0, "/work/wt-config")
from experiments import configs, runs
for seed in [int(s) for s in sys.argv[1].split(",")]:
  for strat in sys.argv[2].split(","):
    c = configs.get("rambo_digits"); c.seed = seed; c.strategy.name = strat
    t = time.perf_counter()
    r = runs.run_one_round(c, f"/tmp/cfgtune/final/{strat}{seed}", verbose=False)
    print(json.dumps({"seed": seed, "strategy": strat, "val": r["val_accuracy"], "test": r["test_accuracy"], "sec": round(time.perf_counter() - t, 1)}), flush=True)
