"""Tests for jal.data: loaders, IDX parsing and checks, transforms, validation."""

import gzip
import pathlib
import shutil
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

import jal.data as jd
from jal.data import idx as idx_lib
from jal.data import transforms as tr

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FMNIST_TRAIN_COUNTS = [6000] * 10
FMNIST_TEST_COUNTS = [1000] * 10
IDX_NAMES = [
  "train-images-idx3-ubyte.gz",
  "train-labels-idx1-ubyte.gz",
  "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz",
]


def _write_idx(path, arr, *, type_code=0x08, dtype=">u1", gz=True, magic=None, extra=b""):
  """Hand-writes an IDX file: magic, big-endian uint32 dims, raw data."""
  arr = np.asarray(arr)
  if magic is None:
    magic = (type_code << 8) | arr.ndim
  header = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
  payload = header + arr.astype(dtype).tobytes() + extra
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(gzip.compress(payload) if gz else payload)
  return path


def _write_fake_idx_dataset(folder, n_train=30, n_test=10, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {
    IDX_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
    IDX_NAMES[1]: np.arange(n_train, dtype=np.uint8) % 10,
    IDX_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
    IDX_NAMES[3]: np.arange(n_test, dtype=np.uint8) % 10,
  }
  for fname, arr in arrays.items():
    _write_idx(pathlib.Path(folder) / fname, arr)
  return arrays


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_split_sizes():
  ds = jd.load("digits")
  assert isinstance(ds, jd.Dataset)
  assert ds.name == "digits" and ds.num_classes == 10
  assert ds.x_train.shape == (1257, 8, 8, 1)
  assert ds.x_val.shape == (180, 8, 8, 1)
  assert ds.x_test.shape == (360, 8, 8, 1)
  assert ds.y_train.shape == (1257,) and ds.y_val.shape == (180,) and ds.y_test.shape == (360,)
  for x in (ds.x_train, ds.x_val, ds.x_test):
    assert x.dtype == np.float32
  for y in (ds.y_train, ds.y_val, ds.y_test):
    assert y.dtype == np.int32 and y.min() >= 0 and y.max() < 10
  # The three splits partition the 1797 images: label histograms add up.
  all_y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
  assert all_y.size == 1797
  np.testing.assert_array_equal(np.bincount(all_y), np.bincount(sk_load_digits().target))


def test_digits_standardised_with_train_constants():
  ds = jd.load("digits", seed=3)
  assert abs(ds.x_train.mean(dtype=np.float64)) < 1e-5
  assert abs(ds.x_train.std(dtype=np.float64) - 1.0) < 1e-5
  raw = sk_load_digits().images[..., None] / 16.0
  test_idx, val_idx, train_idx = jd.random_split(1797, (360, 180), 3)
  mean, std = raw[train_idx].mean(), raw[train_idx].std()
  np.testing.assert_allclose(ds.x_val, (raw[val_idx] - mean) / std, atol=1e-5)
  np.testing.assert_allclose(ds.x_test, (raw[test_idx] - mean) / std, atol=1e-5)
  assert abs(ds.x_val.mean()) > 1e-6  # Not re-standardised on its own.


def test_digits_deterministic_per_seed():
  a, b, c = jd.load("digits", seed=0), jd.load("digits", seed=0), jd.load("digits", seed=1)
  for u, v in zip(a[:6], b[:6]):
    np.testing.assert_array_equal(u, v)
  assert not np.array_equal(a.y_train, c.y_train)
  assert not np.array_equal(a.x_test, c.x_test)


def test_random_split_is_a_disjoint_partition():
  parts = jd.random_split(100, (10, 20), seed=5)
  assert [p.size for p in parts] == [10, 20, 70]
  np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(100))
  with pytest.raises(ValueError, match="sum to at most"):
    jd.random_split(10, (6, 5), seed=0)


def test_load_unknown_name_and_source():
  with pytest.raises(ValueError, match="valid names.*digits.*mnist"):
    jd.load("not_a_dataset")
  with pytest.raises(ValueError, match="valid sources"):
    jd.load("digits", source="ftp")
  with pytest.raises(ValueError, match="source='idx'"):
    jd.load("digits", source="idx")


# ----------------------------------------------------------------------------- real IDX data


@pytest.fixture(scope="module", params=["mnist", "fashion_mnist"])
def real_idx(request, shared_data_dir):
  return request.param, jd.load(request.param, data_dir=str(shared_data_dir))


def test_real_idx_counts_and_labels(real_idx):
  name, ds = real_idx
  train_counts, test_counts = {
    "mnist": (MNIST_TRAIN_COUNTS, MNIST_TEST_COUNTS),
    "fashion_mnist": (FMNIST_TRAIN_COUNTS, FMNIST_TEST_COUNTS),
  }[name]
  assert ds.name == name and ds.num_classes == 10
  assert ds.x_train.shape == (59000, 28, 28, 1) and ds.y_train.shape == (59000,)
  assert ds.x_val.shape == (1000, 28, 28, 1) and ds.y_val.shape == (1000,)
  assert ds.x_test.shape == (10000, 28, 28, 1) and ds.y_test.shape == (10000,)
  train_val = np.concatenate([ds.y_train, ds.y_val])
  assert np.bincount(train_val, minlength=10).tolist() == train_counts
  assert np.bincount(ds.y_test, minlength=10).tolist() == test_counts
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  assert abs(ds.x_train.mean(dtype=np.float64)) < 1e-5
  assert abs(np.sqrt(np.mean(np.square(ds.x_train), dtype=np.float64)) - 1.0) < 1e-5


def test_real_mnist_val_size_seed_and_unverified(shared_data_dir):
  ds = jd.load("mnist", data_dir=str(shared_data_dir), val_size=500, seed=3, verify=False)
  assert ds.x_train.shape[0] == 59500 and ds.x_val.shape[0] == 500
  assert ds.x_test.shape[0] == 10000
  counts = np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=10)
  assert counts.tolist() == MNIST_TRAIN_COUNTS


def _copy_real(shared_data_dir, tmp_path, skip=()):
  dst = tmp_path / "mnist"
  dst.mkdir()
  for fname in IDX_NAMES:
    if fname not in skip:
      shutil.copy(shared_data_dir / "mnist" / fname, dst / fname)
  return dst


def test_missing_file_names_path(shared_data_dir, tmp_path):
  dst = _copy_real(shared_data_dir, tmp_path, skip=("t10k-labels-idx1-ubyte.gz",))
  with pytest.raises(FileNotFoundError) as err:
    jd.load("mnist", data_dir=str(tmp_path))
  msg = str(err.value)
  assert str(dst / "t10k-labels-idx1-ubyte.gz") in msg
  assert "JAL_DATA_DIR" in msg and "--data_dir" in msg


def test_no_data_dir_at_all(monkeypatch):
  monkeypatch.delenv(jd.DATA_DIR_ENV, raising=False)
  with pytest.raises(FileNotFoundError, match="JAL_DATA_DIR"):
    jd.load("mnist")


def test_flipped_byte_fails_checksum(shared_data_dir, tmp_path):
  dst = _copy_real(shared_data_dir, tmp_path)
  target = dst / "t10k-labels-idx1-ubyte.gz"
  data = bytearray(target.read_bytes())
  data[len(data) // 2] ^= 0xFF
  target.write_bytes(bytes(data))
  with pytest.raises(jd.ChecksumError) as err:
    jd.load("mnist", data_dir=str(tmp_path))
  msg = str(err.value)
  assert str(target) in msg
  assert idx_lib.IDX_SHA256["mnist"]["t10k-labels-idx1-ubyte.gz"] in msg
  assert idx_lib.sha256_file(target) in msg
  # Without hashing, the corrupt deflate stream / CRC is still caught.
  with pytest.raises(jd.IdxFormatError, match=str(target)):
    jd.load("mnist", data_dir=str(tmp_path), verify=False)


def test_truncated_file_fails(shared_data_dir, tmp_path):
  dst = _copy_real(shared_data_dir, tmp_path)
  target = dst / "train-labels-idx1-ubyte.gz"
  target.write_bytes(target.read_bytes()[:1000])
  with pytest.raises(jd.ChecksumError, match="train-labels-idx1-ubyte.gz"):
    jd.load("mnist", data_dir=str(tmp_path))
  with pytest.raises(jd.IdxFormatError, match="train-labels-idx1-ubyte.gz"):
    jd.load("mnist", data_dir=str(tmp_path), verify=False)


# ----------------------------------------------------------------------------- read_idx


def test_read_idx_hand_written_files(tmp_path):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  out = jd.read_idx(_write_idx(tmp_path / "img.gz", images))
  np.testing.assert_array_equal(out, images)
  assert out.dtype == np.uint8 and out.flags.writeable
  labels = np.array([3, 1, 4], np.uint8)
  np.testing.assert_array_equal(jd.read_idx(_write_idx(tmp_path / "lab", labels, gz=False)), labels)
  ints = np.array([[-5, 70000], [1, 2]], np.int32)
  out = jd.read_idx(_write_idx(tmp_path / "int.gz", ints, type_code=0x0C, dtype=">i4"))
  np.testing.assert_array_equal(out, ints)
  assert out.dtype == np.int32


def test_read_idx_bad_magic_and_sizes(tmp_path):
  arr = np.zeros((2, 2), np.uint8)
  with pytest.raises(jd.IdxFormatError, match="bad IDX magic number 0x12345602"):
    jd.read_idx(_write_idx(tmp_path / "bad.gz", arr, magic=0x12345602))
  with pytest.raises(jd.IdxFormatError, match="size mismatch"):
    jd.read_idx(_write_idx(tmp_path / "long.gz", arr, extra=b"\x00"))
  path = _write_idx(tmp_path / "short", np.zeros((3, 4), np.uint8), gz=False)
  path.write_bytes(path.read_bytes()[:-1])
  with pytest.raises(jd.IdxFormatError, match="size mismatch"):
    jd.read_idx(path)
  with pytest.raises(jd.IdxFormatError, match="expected 0x00000801"):
    jd.read_idx(_write_idx(tmp_path / "img2.gz", arr), expected_magic=0x801)
  with pytest.raises(FileNotFoundError, match="nope.gz"):
    jd.read_idx(tmp_path / "nope.gz")


def test_env_var_and_unverified_tiny_dataset(tmp_path, monkeypatch):
  arrays = _write_fake_idx_dataset(tmp_path / "mnist")
  monkeypatch.setenv(jd.DATA_DIR_ENV, str(tmp_path))
  ds = jd.load("mnist", val_size=5, verify=False)
  assert ds.x_train.shape == (25, 28, 28, 1) and ds.x_val.shape == (5, 28, 28, 1)
  assert ds.x_test.shape == (10, 28, 28, 1)
  np.testing.assert_array_equal(ds.y_test, arrays[IDX_NAMES[3]])
  # Test images are the hand-written ones after train-constant standardisation.
  raw = arrays[IDX_NAMES[2]].astype(np.float64)[..., None] / 255
  corr = np.corrcoef(raw.ravel(), ds.x_test.ravel())[0, 1]
  assert corr > 1 - 1e-6
  # verify=True rejects the (non-original) files and names the first one.
  with pytest.raises(jd.ChecksumError, match="train-images-idx3-ubyte.gz"):
    jd.load("mnist", val_size=5)
  # Also accepted: pointing directly at the dataset folder.
  ds2 = jd.load("mnist", data_dir=str(tmp_path / "mnist"), val_size=5, verify=False)
  np.testing.assert_array_equal(ds2.x_test, ds.x_test)
  # ... but never at the other dataset's folder.
  with pytest.raises(FileNotFoundError):
    jd.load("fashion_mnist", data_dir=str(tmp_path / "mnist"), verify=False)


# ----------------------------------------------------------------------------- validation


def test_validate_labels_errors():
  np.testing.assert_array_equal(jd.validate_labels(np.array([0, 2, 1]), 3), [0, 2, 1])
  assert jd.validate_labels(np.array([0, 2], np.int64), 3).dtype == np.int32
  with pytest.raises(ValueError, match=r"\[0, 3\).*values: -1, 3, 7"):
    jd.validate_labels(np.array([0, 3, -1, 7, 1]), 3)
  with pytest.raises(ValueError, match="integer dtype"):
    jd.validate_labels(np.array([0.0, 1.0]), 3)
  with pytest.raises(ValueError, match="integer dtype"):
    jd.validate_labels(np.array([True, False]), 3)
  with pytest.raises(ValueError, match="1-D"):
    jd.validate_labels(np.zeros((2, 2), np.int32), 3)
  with pytest.raises(ValueError, match="num_classes"):
    jd.validate_labels(np.array([0]), 0)
  with pytest.raises(TypeError, match="num_classes"):
    jd.validate_labels(np.array([0]), 2.5)


def test_make_dataset_errors():
  x, y = np.zeros((4, 2, 2, 1)), np.zeros(4, np.int64)
  ds = jd.make_dataset(x, y, x, y, x, y, num_classes=2, name="t")
  assert ds.x_val.dtype == np.float32 and ds.y_test.dtype == np.int32
  with pytest.raises(ValueError, match="x_train must be 4-D"):
    jd.make_dataset(x[..., 0], y, x, y, x, y, num_classes=2, name="t")
  with pytest.raises(ValueError, match="x_val has 4 examples but y_val has 3"):
    jd.make_dataset(x, y, x, y[:3], x, y, num_classes=2, name="t")
  with pytest.raises(ValueError, match="x_test has image shape"):
    jd.make_dataset(x, y, x, y, np.zeros((4, 3, 2, 1)), y, num_classes=2, name="t")
  with pytest.raises(ValueError, match="y_train"):
    jd.make_dataset(x, y + 5, x, y, x, y, num_classes=2, name="t")


# ----------------------------------------------------------------------------- transforms


def test_keep_probability_imbalance_rates():
  n_per = 20000
  y = np.repeat(np.arange(10), n_per)
  y_before = y.copy()
  kept = jd.keep_probability_imbalance(y, seed=0)
  np.testing.assert_array_equal(y, y_before)
  counts = np.bincount(y[kept], minlength=10)
  for c in range(10):
    p = 0.1 * (c + 1)
    tol = 5 * np.sqrt(p * (1 - p) * n_per) + 1e-9
    assert abs(counts[c] - p * n_per) <= tol, (c, counts[c])
  assert counts[9] == n_per
  np.testing.assert_array_equal(kept, jd.keep_probability_imbalance(y, seed=0))
  assert not np.array_equal(kept, jd.keep_probability_imbalance(y, seed=1))
  custom = jd.keep_probability_imbalance(y, seed=0, probs=[0.0, 1.0] + [0.5] * 8)
  assert np.bincount(y[custom], minlength=10)[:2].tolist() == [0, n_per]
  with pytest.raises(ValueError, match="probs"):
    jd.keep_probability_imbalance(y, seed=0, probs=[1.5] * 10)
  with pytest.raises(ValueError, match=r"\[0, 3\)"):
    jd.keep_probability_imbalance(y, seed=0, probs=[0.5] * 3)
  with pytest.raises(ValueError, match="pass probs"):
    jd.keep_probability_imbalance(np.arange(11), seed=0)


def test_long_tail_counts_exact():
  y = np.repeat(np.arange(10), 5000)
  kept = jd.long_tail(y, 100, seed=0)
  expected = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
  assert np.bincount(y[kept], minlength=10).tolist() == expected
  assert np.unique(kept).size == kept.size
  small = np.repeat(np.arange(3), 100)
  assert np.bincount(small[jd.long_tail(small, 4, seed=0)]).tolist() == [100, 50, 25]
  assert jd.long_tail(small, 1, seed=0).size == 300
  np.testing.assert_array_equal(kept, jd.long_tail(y, 100, seed=0))
  assert not np.array_equal(kept, jd.long_tail(y, 100, seed=1))
  with pytest.raises(ValueError, match="imbalance_ratio"):
    jd.long_tail(y, 0.5, seed=0)


def test_noisy_labels_flip_exact_fraction():
  y = np.random.default_rng(0).integers(0, 10, 20001)
  y_before = y.copy()
  new = jd.noisy_labels(y, 10, 0.3, seed=0)
  np.testing.assert_array_equal(y, y_before)
  changed = new != y
  assert changed.sum() == round(0.3 * 20001)
  assert new.dtype == np.int32 and new.min() >= 0 and new.max() < 10
  # New labels are uniform over the 9 other classes.
  shifts = np.bincount((new[changed] - y[changed]) % 10, minlength=10)
  assert shifts[0] == 0
  expected = changed.sum() / 9
  assert np.all(np.abs(shifts[1:] - expected) < 5 * np.sqrt(expected))
  np.testing.assert_array_equal(new, jd.noisy_labels(y, 10, 0.3, seed=0))
  assert not np.array_equal(new, jd.noisy_labels(y, 10, 0.3, seed=1))
  np.testing.assert_array_equal(jd.noisy_labels(y, 10, 0.0, seed=0), y)
  assert (jd.noisy_labels(y, 10, 1.0, seed=0) != y).all()
  for bad in (-0.1, 1.5):
    with pytest.raises(ValueError, match="fraction"):
      jd.noisy_labels(y, 10, bad, seed=0)
  with pytest.raises(ValueError, match=r"\[0, 5\)"):
    jd.noisy_labels(y, 5, 0.1, seed=0)


@pytest.mark.parametrize("mode,per_class", [("remove", 80), ("keep", 20)])
def test_class_imbalance(mode, per_class):
  y = np.repeat(np.arange(10), 100)
  res = jd.class_imbalance(y, 10, seed=0, class_fraction=0.3, remove_fraction=0.2, mode=mode)
  assert isinstance(res, jd.ClassImbalance)
  assert res.affected_classes.size == 3 and np.unique(res.affected_classes).size == 3
  counts = np.bincount(y[res.indices], minlength=10)
  affected = np.isin(np.arange(10), res.affected_classes)
  assert (counts[affected] == per_class).all() and (counts[~affected] == 100).all()
  again = jd.class_imbalance(y, 10, seed=0, mode=mode)
  np.testing.assert_array_equal(res.indices, again.indices)
  other = [jd.class_imbalance(y, 10, seed=s, mode=mode).affected_classes for s in range(1, 6)]
  assert any(not np.array_equal(res.affected_classes, o) for o in other)


def test_class_imbalance_bad_args():
  y = np.repeat(np.arange(4), 5)
  with pytest.raises(ValueError, match="class_fraction"):
    jd.class_imbalance(y, 4, seed=0, class_fraction=1.2)
  with pytest.raises(ValueError, match="remove_fraction"):
    jd.class_imbalance(y, 4, seed=0, remove_fraction=-0.5)
  with pytest.raises(ValueError, match="mode"):
    jd.class_imbalance(y, 4, seed=0, mode="drop")
  with pytest.raises(ValueError, match=r"\[0, 3\)"):
    jd.class_imbalance(y, 3, seed=0)


def test_apply_to_train():
  ds = jd.load("digits")
  n = ds.y_train.size
  noisy = jd.noisy_labels(ds.y_train, 10, 0.5, seed=0)
  kept = jd.long_tail(ds.y_train, 10, seed=0)
  x_before, y_before = ds.x_train.copy(), ds.y_train.copy()
  out = tr.apply_to_train(ds, indices=kept, labels=noisy)
  np.testing.assert_array_equal(out.y_train, noisy[kept])
  np.testing.assert_array_equal(out.x_train, ds.x_train[kept])
  assert out.x_val is ds.x_val and out.y_test is ds.y_test and out.num_classes == 10
  np.testing.assert_array_equal(ds.x_train, x_before)
  np.testing.assert_array_equal(ds.y_train, y_before)
  with pytest.raises(ValueError, match=f"in \\[0, {n}\\)"):
    jd.apply_to_train(ds, indices=[0, n])
  with pytest.raises(ValueError, match="entries"):
    jd.apply_to_train(ds, labels=noisy[:-1])
  with pytest.raises(ValueError, match="integer"):
    jd.apply_to_train(ds, indices=[0.5])


# ----------------------------------------------------------------------------- tfds (mocked)


@pytest.mark.parametrize(
  "name,shape,num_classes",
  [("cifar10", (32, 32, 3), 10), ("mnist", (28, 28, 1), 10), ("emnist", (28, 28, 1), 62)],
)
def test_tfds_mock_data(tmp_path, name, shape, num_classes):
  tfds = pytest.importorskip("tensorflow_datasets")
  pytest.importorskip("array_record")
  with tfds.testing.mock_data(num_examples=40):
    ds = jd.load(name, source="tfds", data_dir=str(tmp_path), val_size=10, seed=0)
    again = jd.load(name, source="tfds", data_dir=str(tmp_path), val_size=10, seed=0)
  assert ds.num_classes == num_classes and ds.name == name
  assert ds.x_train.shape == (30, *shape) and ds.x_val.shape == (10, *shape)
  assert ds.x_test.shape == (40, *shape) and ds.y_test.shape == (40,)
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  assert ds.y_train.min() >= 0 and ds.y_train.max() < num_classes
  # Standardised per channel with train statistics.
  axes = (0, 1, 2)
  np.testing.assert_allclose(ds.x_train.mean(axis=axes, dtype=np.float64), 0, atol=1e-5)
  np.testing.assert_allclose(ds.x_train.std(axis=axes, dtype=np.float64), 1, atol=1e-5)
  np.testing.assert_array_equal(ds.x_train, again.x_train)


def test_tfds_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
  pytest.importorskip("tensorflow_datasets")
  from jal.data import tfds_loader
  monkeypatch.setattr(tfds_loader, "_online", lambda: False)
  with pytest.raises(FileNotFoundError, match="could not be downloaded"):
    tfds_loader.load_tfds_arrays("cifar10", data_dir=str(tmp_path))
