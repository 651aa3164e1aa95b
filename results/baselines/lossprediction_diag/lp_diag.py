"""Does LossPrediction's LossNet rank the pool's true losses? (MNIST, LeNet, |L|=100/200)."""
import jax, jax.numpy as jnp, numpy as np, optax, sys
import jal
from experiments import build, configs
from jal.strategies.learned.loss_prediction import fit_loss_prediction, predicted_losses, LossPredConfig

def spearman(a, b):
  ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
  return float(np.corrcoef(ra, rb)[0, 1])

c = configs.get("mnist_lenet")
data = build.dataset(c, "/work/shared/data")
net = build.net(c, data); tc = build.train_config(c)
x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
n = x.shape[0]
for seed in (0, 1):
  for n_lab in (100, 400):
    rng = np.random.default_rng(seed); lab = np.zeros(n, bool); lab[rng.choice(n, n_lab, replace=False)] = True
    for de in (20, 0, 1000):
      hp = LossPredConfig(detach_epoch=de)
      res = fit_loss_prediction(jax.random.key(seed), net, tc, x, y, jnp.asarray(lab), hp)
      sub = np.flatnonzero(~lab)[:10000]
      pred = np.asarray(predicted_losses(net, res.variables, res.extra["lossnet"], x[sub]))
      logits, _ = jal.predict(net, res.variables, x[sub], 1024)
      ce = np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, y[sub]))
      p = np.sort(np.asarray(jax.nn.softmax(logits)), -1); marg = -(p[:, -1] - p[:, -2])
      top = np.argsort(-pred)[:100]
      print(f"seed {seed} |L|={n_lab} detach={de}: epochs {int(res.epochs)} test acc "
            f"{jal.accuracy(net, res.variables, data.x_test, data.y_test):.4f}  spearman(pred, CE) "
            f"{spearman(pred, ce):.3f}  spearman(-margin, CE) {spearman(marg, ce):.3f}  "
            f"top-100 classes {np.bincount(np.asarray(y[sub])[top], minlength=10).tolist()}", flush=True)
