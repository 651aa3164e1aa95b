"""Records what the OLD dict configs build (run on the pre-change tree)."""
import dataclasses, json, sys
import jal
from experiments import common, configs, one_round

def describe(c, rambo):
  out = {"seed": int(c["seed"]), "train": dataclasses.asdict(common.train_config(c)),
         "dataset": c["dataset"], "val_size": c.get("val_size"), "data_seed": int(c.get("data_seed", 0)),
         "train_transform": c.get("train_transform"),
         "model": c["model"], "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in dict(c.get("model_kwargs") or {}).items()},
         "strategy": c["strategy"]}
  if rambo:
    out["rambo"] = dataclasses.asdict(one_round.rambo_config(c))
    out["pool"] = {k: c[k] for k in ("imbalance", "imbalance_classes", "imbalance_fraction", "noise_rate")}
    out["dropout"] = 0.0
  else:
    out["loop"] = dataclasses.asdict(common.loop_config(c))
    out["strategy_kwargs"] = common.strategy_kwargs(c)
    d = float(c.get("dropout") or 0.0)
    out["dropout"] = 0.25 if (c["strategy"] == "bald" and d <= 0) else d
  return out

res = {}
for name in configs.CONFIGS:
  rambo = name.startswith("rambo")
  variants = {"": {}}
  if rambo:
    variants.update({"strategy=random": {"strategy": "random"}})
  else:
    variants.update({"strategy=random": {"strategy": "random"}, "strategy=bald": {"strategy": "bald"},
                     "strategy=bral_t": {"strategy": "bral_t"}})
  for vname, over in variants.items():
    c = one_round.resolve(name, over) if rambo else common.resolve_config(name, over)
    res[name + (f"[{vname}]" if vname else "")] = describe(c, rambo)
json.dump(res, sys.stdout, indent=1, sort_keys=True)
