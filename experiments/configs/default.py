"""Default protocol: the embedded digits data, a small MLP, a minute on 2 CPU cores."""


def get_config() -> dict:
  return dict(
      dataset="digits", model="mlp", model_kwargs={"hidden": (256, 128)},
      strategy="margin", seed=0,
      init_size=20, budget=20, rounds=10, chunk_size=1024,
      epochs=50, batch_size=32, learning_rate=1e-3, optimizer="adam",
      stop_train_acc=None, superloss=False, augment="none", dropout=0.0,
  )
