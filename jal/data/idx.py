"""MNIST / Fashion-MNIST from the original IDX ``.gz`` files, with sha256 checks.

Layout: ``<data_dir>/mnist/`` and ``<data_dir>/fashion_mnist/``, each holding the
four original files (`IDX_FILES`). ``data_dir`` defaults to the environment
variable `DATA_DIR_ENV` (``JAL_DATA_DIR``) and may also point directly at a
dataset folder. Nothing is cached on disk.
"""

import gzip
import hashlib
import os
import pathlib
import struct
import zlib

import numpy as np

from jal.data.dataset import Dataset, make_dataset, random_split, standardize

__all__ = [
  "DATA_DIR_ENV",
  "IDX_DATASETS",
  "IDX_FILES",
  "IDX_SHA256",
  "ChecksumError",
  "IdxFormatError",
  "load_idx",
  "load_idx_arrays",
  "read_idx",
  "resolve_idx_dir",
  "sha256_file",
  "verify_sha256",
]

DATA_DIR_ENV = "JAL_DATA_DIR"

IDX_FILES = {
  "train_images": "train-images-idx3-ubyte.gz",
  "train_labels": "train-labels-idx1-ubyte.gz",
  "test_images": "t10k-images-idx3-ubyte.gz",
  "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# sha256 of the staged .gz files (see shared/data/README.md). MNIST's
# train-images .gz was re-compressed (`gzip -9 -n`) from the original content.
IDX_SHA256 = {
  "mnist": {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
  },
  "fashion_mnist": {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
  },
}
IDX_DATASETS = tuple(IDX_SHA256)
_NUM_CLASSES = 10
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801

# IDX type code (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {
  0x08: np.dtype("u1"),
  0x09: np.dtype("i1"),
  0x0B: np.dtype(">i2"),
  0x0C: np.dtype(">i4"),
  0x0D: np.dtype(">f4"),
  0x0E: np.dtype(">f8"),
}


class ChecksumError(ValueError):
  """A data file's sha256 differs from the expected one."""


class IdxFormatError(ValueError):
  """A file is not a well-formed IDX file (bad magic, truncated, bad gzip)."""


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
  """Returns the hex sha256 of a file, read in chunks of ``chunk_size`` bytes."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(chunk_size):
      h.update(chunk)
  return h.hexdigest()


def verify_sha256(path, expected: str) -> None:
  """Raises `ChecksumError` naming ``path`` if its sha256 is not ``expected``."""
  actual = sha256_file(path)
  if actual != expected.lower():
    raise ChecksumError(
      f"sha256 mismatch for {path}: expected {expected}, got {actual}. "
      "The file is corrupt or not the expected dataset file; re-copy it."
    )


def read_idx(path, *, expected_magic: int | None = None) -> np.ndarray:
  """Reads an IDX file (gzip-compressed or raw) into a native-endian array.

  The header is the magic ``0x0000TTDD`` (``TT`` the type code, e.g. ``0x08``
  for uint8, ``DD`` the number of dims), then one big-endian uint32 per dim,
  then the row-major data.

  Args:
    path: path to a ``.gz`` or uncompressed IDX file.
    expected_magic: if given, e.g. ``0x803`` for images or ``0x801`` for labels,
      the file's magic must equal it.

  Returns:
    New writable array of shape ``dims``, e.g. ``[60000, 28, 28]`` uint8.

  Raises:
    FileNotFoundError: if ``path`` does not exist.
    IdxFormatError: on a bad magic number, a truncated or oversized payload
      (size mismatch with the header) or a corrupt gzip stream.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"IDX file not found: {path}")
  with open(path, "rb") as f:
    is_gzip = f.read(2) == b"\x1f\x8b"
  try:
    with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as f:
      buf = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise IdxFormatError(f"{path}: cannot read gzip stream ({e})") from e
  if len(buf) < 4:
    raise IdxFormatError(f"{path}: file too short for an IDX header ({len(buf)} bytes)")
  magic = struct.unpack(">I", buf[:4])[0]
  type_code, ndim = buf[2], buf[3]
  if buf[0] != 0 or buf[1] != 0 or type_code not in _IDX_DTYPES or ndim == 0:
    raise IdxFormatError(f"{path}: bad IDX magic number 0x{magic:08X}")
  if expected_magic is not None and magic != expected_magic:
    raise IdxFormatError(
      f"{path}: IDX magic 0x{magic:08X} but expected 0x{expected_magic:08X}"
    )
  header = 4 + 4 * ndim
  if len(buf) < header:
    raise IdxFormatError(f"{path}: truncated IDX header ({len(buf)} < {header} bytes)")
  dims = struct.unpack(f">{ndim}I", buf[4:header])
  dtype = _IDX_DTYPES[type_code]
  count = int(np.prod(dims, dtype=np.int64))
  expected_bytes = count * dtype.itemsize
  actual_bytes = len(buf) - header
  if actual_bytes != expected_bytes:
    raise IdxFormatError(
      f"{path}: size mismatch, header dims {dims} need {expected_bytes} data bytes "
      f"but the file holds {actual_bytes}"
    )
  arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(dims)
  return arr.astype(dtype.newbyteorder("="))  # Native byte order, writable copy.


def resolve_idx_dir(name: str, data_dir=None) -> pathlib.Path:
  """Returns the folder holding ``name``'s IDX files.

  Args:
    name: ``"mnist"`` or ``"fashion_mnist"``.
    data_dir: directory holding ``<name>/``, or that folder itself; defaults to
      the ``JAL_DATA_DIR`` environment variable.

  Returns:
    ``<data_dir>/<name>`` if it exists, else ``data_dir`` itself when it looks
    like the dataset folder, else ``<data_dir>/<name>`` (reported as missing
    later).

  Raises:
    ValueError: if ``name`` is not an IDX dataset.
    FileNotFoundError: if neither ``data_dir`` nor ``JAL_DATA_DIR`` is set.
  """
  if name not in IDX_SHA256:
    raise ValueError(f"unknown IDX dataset {name!r}; valid names: {list(IDX_DATASETS)}")
  root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
  if not root:
    raise FileNotFoundError(
      f"no data directory for {name!r}: pass data_dir (--data_dir) or set the "
      f"{DATA_DIR_ENV} environment variable to a directory holding {name}/ with "
      f"{', '.join(IDX_FILES.values())}"
    )
  root = pathlib.Path(root).expanduser()
  sub = root / name
  if sub.is_dir():
    return sub
  # Pointed directly at the dataset folder (but never at the other dataset's).
  if root.name == name or (
    root.name not in IDX_SHA256 and (root / IDX_FILES["train_images"]).is_file()
  ):
    return root
  return sub


def load_idx_arrays(name: str, *, data_dir=None, verify: bool = True):
  """Reads the raw train and test arrays of an IDX dataset.

  Args:
    name: ``"mnist"`` or ``"fashion_mnist"``.
    data_dir: see `resolve_idx_dir`.
    verify: check each file's sha256 (`IDX_SHA256`) before parsing.

  Returns:
    ``(x_train, y_train, x_test, y_test)``: uint8 ``[60000, 28, 28]``,
    ``[60000]``, ``[10000, 28, 28]``, ``[10000]``.

  Raises:
    FileNotFoundError: naming the full path of each missing file.
    ChecksumError: naming the file, expected and actual sha256.
    IdxFormatError: on malformed files or image / label count mismatch.
  """
  folder = resolve_idx_dir(name, data_dir)
  paths = {key: folder / fname for key, fname in IDX_FILES.items()}
  missing = [str(p) for p in paths.values() if not p.is_file()]
  if missing:
    raise FileNotFoundError(
      f"missing {name} IDX file(s): {', '.join(missing)}. Set --data_dir or the "
      f"{DATA_DIR_ENV} environment variable to a directory holding {name}/ "
      "with the original IDX .gz files."
    )
  arrays = {}
  for key, path in paths.items():
    if verify:
      verify_sha256(path, IDX_SHA256[name][path.name])
    magic = _IMAGES_MAGIC if key.endswith("images") else _LABELS_MAGIC
    arrays[key] = read_idx(path, expected_magic=magic)
  for split in ("train", "test"):
    n_x, n_y = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
    if n_x != n_y:
      raise IdxFormatError(
        f"{paths[f'{split}_images']} holds {n_x} images but "
        f"{paths[f'{split}_labels']} holds {n_y} labels"
      )
  return (arrays["train_images"], arrays["train_labels"],
          arrays["test_images"], arrays["test_labels"])


def load_idx(
  name: str,
  *,
  data_dir=None,
  val_size: int = 1000,
  seed: int = 0,
  verify: bool = True,
) -> Dataset:
  """Loads MNIST or Fashion-MNIST as a standardised `Dataset`.

  The 10k test files form the test split; ``val_size`` examples drawn at random
  (from ``seed``) out of the 60k train files form the validation split.

  Args:
    name: ``"mnist"`` or ``"fashion_mnist"``.
    data_dir: see `resolve_idx_dir`.
    val_size: number of validation examples.
    seed: seed of the validation draw.
    verify: check sha256 of each file before parsing.

  Returns:
    `Dataset` with ``[n, 28, 28, 1]`` float32 images and 10 classes.
  """
  x_tr, y_tr, x_te, y_te = load_idx_arrays(name, data_dir=data_dir, verify=verify)
  val_idx, train_idx = random_split(len(y_tr), (val_size,), seed)
  x_train, x_val, x_test = standardize(
    x_tr[train_idx][..., None], x_tr[val_idx][..., None], x_te[..., None]
  )
  return make_dataset(
    x_train, y_tr[train_idx], x_val, y_tr[val_idx], x_test, y_te,
    num_classes=_NUM_CLASSES, name=name,
  )
