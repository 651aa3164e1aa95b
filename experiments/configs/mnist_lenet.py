"""MNIST, LeNet-5, |L0| = 100, 100 queried per round for 5 rounds (issue 2 acceptance).

Training follows RAMBO §5.1 / DISTIL: Adam 1e-3, minibatch 64, until the running train
accuracy exceeds 99% or 100 epochs. Needs the MNIST IDX files (``--data_dir``).
"""

from experiments.configs import base


def get_config():
  return base.al_config(
      dataset="mnist", model="lenet", model_kwargs={}, strategy="margin",
      init_size=100, budget=100, rounds=5, chunk_size=2048, epochs=100, batch_size=64,
      stop_train_acc=0.99)
