"""Is one ResNet-18 training-mode gradient bit-identical across core counts? (session 23)

  taskset -c 0 python results/bralt/fmnist_resnet/gradient_determinism.py
  taskset -c 1 python results/bralt/fmnist_resnet/gradient_determinism.py
  python results/bralt/fmnist_resnet/gradient_determinism.py      # both cores

Prints a SHA-1 prefix of the gradient's bytes and its L1 norm.
"""
import hashlib

import jax
import numpy as np
import optax

import jal

net = jal.make_net("resnet18", (28, 28, 1), 10, stem="imagenet")
key = jax.random.key(0)
x = jax.random.normal(key, (128, 28, 28, 1))
y = jax.random.randint(key, (128,), 0, 10)
v = net.init(key)
def loss(params):
  out = net.apply(v._replace(params=params), x, train=True)
  logits = out[0] if isinstance(out, tuple) else out
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
g = jax.jit(jax.grad(loss))(v.params)
leaves = [np.asarray(l) for l in jax.tree.leaves(g)]
h = hashlib.sha1(b"".join(l.tobytes() for l in leaves)).hexdigest()[:12]
print("hash", h, "sum", sum(float(np.abs(l).sum()) for l in leaves))
