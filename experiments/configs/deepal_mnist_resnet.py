"""The DeepAL+ comparison protocol: MNIST, ResNet-18 with the ImageNet stem behind a 1×1 conv
1→3, Adam 1e-3, minibatch 128, 20 epochs, |L0| = 100, Margin, 100 per round, 5 rounds, the full
60k pool (no validation split carved out)."""

from experiments.configs import base


def get_config():
  return base.al_config(
      dataset="mnist", model="resnet18", model_kwargs={"stem": "imagenet"}, strategy="margin",
      val_size=0, init_size=100, budget=100, rounds=5, chunk_size=1024, epochs=20,
      batch_size=128)
