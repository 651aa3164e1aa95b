"""Datasets for jal: loaders, the `Dataset` container and seeded transforms.

Use `load` for every dataset::

  ds = jal.data.load("digits", seed=0)                      # embedded, no download
  ds = jal.data.load("mnist", data_dir="/data")             # IDX .gz files
  ds = jal.data.load("cifar10", source="tfds")              # tfds catalog
"""

from jal.data.dataset import (
  DIGITS_TEST_SIZE,
  DIGITS_VAL_SIZE,
  Dataset,
  load_digits,
  make_dataset,
  random_split,
  standardize,
  validate_labels,
)
from jal.data.idx import (
  DATA_DIR_ENV,
  IDX_DATASETS,
  ChecksumError,
  IdxFormatError,
  load_idx,
  read_idx,
)
from jal.data.initial import (
  INITIAL_SETS,
  InitialSet,
  main_and_rare_classes,
  twisted_initial_mask,
)
from jal.data.tfds_loader import TFDS_DATASETS, load_tfds
from jal.data.transforms import (
  ClassImbalance,
  apply_to_train,
  class_imbalance,
  keep_probability_imbalance,
  long_tail,
  noisy_labels,
)

__all__ = [
  "DATASETS",
  "DATA_DIR_ENV",
  "DEFAULT_VAL_SIZE",
  "DIGITS_TEST_SIZE",
  "DIGITS_VAL_SIZE",
  "INITIAL_SETS",
  "SOURCES",
  "ChecksumError",
  "ClassImbalance",
  "Dataset",
  "IdxFormatError",
  "InitialSet",
  "apply_to_train",
  "class_imbalance",
  "keep_probability_imbalance",
  "load",
  "load_digits",
  "load_idx",
  "load_tfds",
  "long_tail",
  "main_and_rare_classes",
  "make_dataset",
  "noisy_labels",
  "random_split",
  "read_idx",
  "standardize",
  "twisted_initial_mask",
  "validate_labels",
]

# Names `load` accepts with source="auto" (tfds configs such as
# "emnist/letters" are accepted too); source="tfds" takes any catalog name.
DATASETS = tuple(dict.fromkeys(("digits", *IDX_DATASETS, *TFDS_DATASETS)))
SOURCES = ("auto", "embedded", "idx", "tfds")
DEFAULT_VAL_SIZE = 1000  # For IDX and tfds datasets; digits uses DIGITS_VAL_SIZE.


def load(
  name: str,
  *,
  data_dir: str | None = None,
  val_size: int | None = None,
  seed: int = 0,
  source: str = "auto",
  verify: bool = True,
) -> Dataset:
  """Loads a dataset by name as a standardised `Dataset`.

  Args:
    name: ``"digits"`` (scikit-learn, embedded), ``"mnist"``,
      ``"fashion_mnist"`` or a tfds catalog name (see `DATASETS`).
    data_dir: for IDX datasets the directory holding ``mnist/`` and
      ``fashion_mnist/`` (or the dataset folder itself; default: the
      ``JAL_DATA_DIR`` environment variable); for tfds its data directory.
    val_size: number of validation examples; default 180 for digits, 1000
      otherwise, carved at random out of the train split.
    seed: seed of the split (for digits also of the test split).
    source: ``"auto"`` (digits embedded, mnist / fashion_mnist from IDX files,
      other names from tfds), ``"embedded"``, ``"idx"`` or ``"tfds"``.
    verify: check the sha256 of IDX files before parsing.

  Returns:
    The `Dataset`.

  Raises:
    ValueError: for an unknown name or source, or a name the source cannot load.
  """
  if source not in SOURCES:
    raise ValueError(f"unknown source {source!r}; valid sources: {list(SOURCES)}")
  key = name.strip().lower().replace("-", "_")
  if source == "auto":
    if key == "digits":
      source = "embedded"
    elif key in IDX_DATASETS:
      source = "idx"
    elif key.split("/")[0] in TFDS_DATASETS:
      source = "tfds"
    else:
      raise ValueError(
        f"unknown dataset {name!r}; valid names: {list(DATASETS)} "
        "(use source='tfds' for other tfds catalog names)"
      )
  if source == "embedded":
    if key != "digits":
      raise ValueError(f"source='embedded' only provides 'digits', got {name!r}")
    return load_digits(val_size=val_size, seed=seed)
  val_size = DEFAULT_VAL_SIZE if val_size is None else val_size
  if source == "idx":
    if key not in IDX_DATASETS:
      raise ValueError(
        f"source='idx' provides {list(IDX_DATASETS)}, got {name!r}"
      )
    return load_idx(key, data_dir=data_dir, val_size=val_size, seed=seed, verify=verify)
  tfds_name = key if key.split("/")[0] in TFDS_DATASETS else name.strip()
  return load_tfds(tfds_name, data_dir=data_dir, val_size=val_size, seed=seed)
