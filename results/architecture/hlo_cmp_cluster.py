import re, sys
sys.path.insert(0, "/work/wt-cluster/experiments")
import jax, jax.numpy as jnp, numpy as np
import bench_cluster
import jal
old = bench_cluster._import_renamed("/work/wt-cluster-old")

def norm(txt):
  txt = re.sub(r", metadata=\{[^}]*\}", "", txt)
  txt = re.sub(r"^HloModule [^\n]*", "", txt)
  txt = re.sub(r"jit_[A-Za-z_]+", "jit_F", txt)
  txt = re.sub(r'(frontend_attributes|sharding)=\{[^}]*\}', '', txt)
  return txt

n, d = 5000, 84
x = jax.random.normal(jax.random.key(1), (n, d)); a = jax.random.normal(jax.random.key(2), (n, 10))
lab = jnp.asarray(np.arange(n) % 9 == 0); key = jax.random.key(0)
grp = jnp.asarray(np.arange(n) % 5 - 1)
def fns(J, new):
  C = J.cluster
  top = C.top_k_unlabeled if new else J.strategies.top_k_unlabeled
  return {
    "kmeans_plusplus": lambda k, x, m: C.kmeans_plusplus(k, x, 50, m),
    "kmeans_plusplus_factored": lambda k, a, x, m: C.kmeans_plusplus_factored(k, a, x, 50, m),
    "kmeans": lambda k, x, m: C.kmeans(k, x, 50, m, n_iter=20),
    "kmeans_n_init3": lambda k, x, m: C.kmeans(k, x, 50, m, n_iter=20, n_init=3),
    "kcenter_traced": lambda x, l: C.kcenter_greedy(x, 50, l, chunk_size=64),
    "top_k": lambda s, l: top(s, l, 50),
    "grouped_kmeans": lambda k, x, g: (C.grouped_kmeans if new else J_grouped)(k, x, g, 4, 3),
  }
import importlib
J_grouped = importlib.import_module("jal_base.grouped_kmeans").grouped_kmeans
args = {"kmeans_plusplus": (key, x, ~lab), "kmeans_plusplus_factored": (key, a, x, ~lab),
        "kmeans": (key, x, ~lab), "kmeans_n_init3": (key, x, ~lab), "kcenter_traced": (x, lab),
        "top_k": (x[:, 0], lab), "grouped_kmeans": (key, x, grp)}
fo, fn = fns(old, False), fns(jal, True)
for name in fo:
  to = norm(jax.jit(fo[name]).lower(*args[name]).compile().as_text())
  tn = norm(jax.jit(fn[name]).lower(*args[name]).compile().as_text())
  print(name, "identical optimized HLO" if to == tn else f"DIFFERENT ({len(to)} vs {len(tn)} chars)")
  if to != tn:
    open(f"/tmp/hlo/{name}.old", "w").write(to); open(f"/tmp/hlo/{name}.new", "w").write(tn)

# Second pass (run in /tmp/hlo on the *.old / *.new files written above): drop the stack-frame
# tables and stack_frame_id attributes, strip the numeric suffixes of instruction names, then
# compare line multisets:
#   t = re.sub(r",? ?stack_frame_id=\d+", "", t); t = re.sub(r"([A-Za-z_][A-Za-z_0-9]*)\.\d+", r"\1", t)
