"""Image-classification datasets from the tensorflow-datasets (tfds) catalog.

Reads through `tfds.data_source` (random access over ArrayRecord files, no
TensorFlow needed); if the prepared data is stored in another format (e.g.
TFRecord prepared earlier with TensorFlow), falls back to
``tfds.load(..., batch_size=-1)`` + `tfds.as_numpy`, which needs TensorFlow.
`tensorflow_datasets` is imported lazily so that ``import jal`` stays fast.

Note: tfds stores EMNIST images transposed (as in the original release); they
are returned as stored.
"""

import socket

import numpy as np

from jal.data.dataset import Dataset, make_dataset, random_split, standardize

__all__ = ["TFDS_ALIASES", "TFDS_DATASETS", "load_tfds", "load_tfds_arrays"]

# Catalog names known to work (NHWC uint8 images + integer labels).
TFDS_DATASETS = (
  "mnist",
  "fashion_mnist",
  "kmnist",
  "cifar10",
  "cifar100",
  "svhn_cropped",
  "emnist",
)
# Names whose default config is pinned explicitly.
TFDS_ALIASES = {"emnist": "emnist/byclass"}


def _is_format_error(err: Exception) -> bool:
  """Whether ``err`` says the prepared data is not in a random-access format."""
  if isinstance(err, NotImplementedError):
    return True
  msg = str(err).lower()
  return isinstance(err, ValueError) and "file format" in msg


def _source_to_numpy(source, image_key: str, label_key: str):
  """Materialises a tfds random-access source into ``(x [n,H,W,C] uint8, y [n])``."""
  n = len(source)
  if n == 0:
    raise ValueError(f"tfds source {source!r} is empty")
  first = source[0]
  for key in (image_key, label_key):
    if key not in first:
      raise ValueError(f"tfds examples have keys {sorted(first)}, missing {key!r}")
  image = np.asarray(first[image_key])
  shape = image.shape if image.ndim == 3 else image.shape + (1,)
  x = np.empty((n, *shape), dtype=image.dtype)
  y = np.empty((n,), dtype=np.int64)
  for i in range(n):
    ex = first if i == 0 else source[i]
    x[i] = np.asarray(ex[image_key]).reshape(shape)
    y[i] = int(ex[label_key])
  return x, y


def _online(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
  """Whether a TCP connection to tfds' download host opens within ``timeout`` seconds."""
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _unavailable(name: str, data_dir, err: Exception) -> FileNotFoundError:
  return FileNotFoundError(
      f"tfds dataset {name!r} is not prepared in {data_dir or '~/tensorflow_datasets'} and "
      f"could not be downloaded ({type(err).__name__}); this machine may be offline. Prepare "
      f"it where the network is reachable (tfds build {name} --file_format=array_record) and "
      f"pass its directory as data_dir / --data_dir")


def _num_classes(info, label_key: str) -> int:
  feature = info.features[label_key]
  num = getattr(feature, "num_classes", None)
  if not num:
    raise ValueError(f"tfds feature {label_key!r} is not a ClassLabel: {feature!r}")
  return int(num)


def load_tfds_arrays(
  name: str,
  *,
  data_dir=None,
  splits=("train", "test"),
  image_key: str = "image",
  label_key: str = "label",
  download: bool = True,
):
  """Reads tfds splits into numpy arrays.

  Args:
    name: tfds catalog name, optionally with a config (``"emnist/letters"``).
    data_dir: tfds data directory (default: tfds' own default).
    splits: split names to read.
    image_key: feature holding the image.
    label_key: feature holding the class label.
    download: let tfds download and prepare the data if needed.

  Returns:
    ``(arrays, num_classes)`` with ``arrays`` a list of ``(x, y)`` per split:
    ``x`` ``[n, H, W, C]`` (uint8 for image datasets), ``y`` ``[n]`` int64.

  Raises:
    ValueError: for an unknown catalog name (tfds' ``DatasetNotFoundError``).
    ImportError: if the data is not in ArrayRecord format and TensorFlow,
      needed to read it, is not installed.
    FileNotFoundError: if the data is not prepared and cannot be downloaded (offline);
      checked with a 3-second connection before tfds' minutes of download retries.
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  name = TFDS_ALIASES.get(name, name)
  splits = list(splits)

  def data_source(dl):
    return tfds.data_source(name, split=splits, data_dir=data_dir, download=dl,
                            builder_kwargs={"file_format": "array_record"})

  try:
    try:
      sources = data_source(False)
    except KeyError:  # not generated yet ("`splits` is empty")
      if not download:
        raise
      if not _online():
        # tfds would retry the download for minutes before failing: say so at once.
        raise _unavailable(name, data_dir, ConnectionError("no network")) from None
      sources = data_source(True)
  except (NotImplementedError, ValueError) as err:
    if not _is_format_error(err):
      raise
  except FileNotFoundError:
    raise
  except (OSError, ConnectionError) as err:
    raise _unavailable(name, data_dir, err) from err
  except Exception as err:  # requests' ConnectionError and friends (not OSError subclasses)
    if "Connection" not in type(err).__name__ and "Resolution" not in str(err):
      raise
    raise _unavailable(name, data_dir, err) from err
  else:
    num_classes = _num_classes(sources[0].dataset_info, label_key)
    return [_source_to_numpy(s, image_key, label_key) for s in sources], num_classes

  # Prepared in a non random-access format: read through tf.data.
  try:
    import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError as err:
    raise ImportError(
      f"tfds dataset {name!r} is not stored as ArrayRecord; reading it needs "
      "TensorFlow (pip install tensorflow-cpu)"
    ) from err
  builder = tfds.builder(name, data_dir=data_dir)
  if download:
    builder.download_and_prepare()
  num_classes = _num_classes(builder.info, label_key)
  arrays = []
  for split in splits:
    batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    x = np.asarray(batch[image_key])
    x = x if x.ndim == 4 else x[..., None]
    arrays.append((x, np.asarray(batch[label_key]).astype(np.int64)))
  return arrays, num_classes


def load_tfds(
  name: str,
  *,
  data_dir=None,
  val_size: int = 1000,
  seed: int = 0,
  image_key: str = "image",
  label_key: str = "label",
  download: bool = True,
) -> Dataset:
  """Loads a tfds image-classification dataset as a standardised `Dataset`.

  The tfds ``test`` split is the test split; ``val_size`` examples drawn at
  random (from ``seed``) out of ``train`` form the validation split. Images are
  scaled to ``[0, 1]`` (uint8 / 255) and standardised with the train split's
  mean and std (one scalar for grayscale, per channel for RGB).

  Args:
    name: tfds catalog name; ``"emnist"`` means ``"emnist/byclass"``.
    data_dir: tfds data directory.
    val_size: number of validation examples.
    seed: seed of the validation draw.
    image_key: feature holding the image.
    label_key: feature holding the label (e.g. ``"coarse_label"`` for the
      20 CIFAR-100 superclasses).
    download: let tfds download and prepare the data if needed.

  Returns:
    `Dataset` named ``name`` with float32 ``[n, H, W, C]`` images.
  """
  arrays, num_classes = load_tfds_arrays(
    name, data_dir=data_dir, image_key=image_key, label_key=label_key,
    download=download,
  )
  (x_tr, y_tr), (x_te, y_te) = arrays
  max_value = 255.0 if x_tr.dtype == np.uint8 else 1.0
  val_idx, train_idx = random_split(len(y_tr), (val_size,), seed)
  x_train, x_val, x_test = standardize(
    x_tr[train_idx], x_tr[val_idx], x_te, max_value=max_value
  )
  return make_dataset(
    x_train, y_tr[train_idx], x_val, y_tr[val_idx], x_test, y_te,
    num_classes=num_classes, name=name,
  )
