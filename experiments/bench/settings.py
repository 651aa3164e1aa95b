"""The sizes of the benchmark (``Settings``), their CPU / accelerator defaults and sections."""

import dataclasses
from collections.abc import Sequence

import jax

__all__ = ["SECTIONS", "Settings", "default_settings", "parse_sections", "settings_from_config"]

SECTIONS = ("machine", "scores", "fit", "al_round", "fit_many")


@dataclasses.dataclass(frozen=True)
class Settings:
  """Every size of the benchmark (see ``default_settings`` for the CPU / accelerator values).

  Attributes:
    matmul_n: side of the square float32 matmul.
    matmul_repeats: timed matmul runs (the best one is reported).
    warmup: untimed runs of an already compiled function before the timed ones.
    repeats: timed runs of the score functions (the best one is reported).
    el2n_n_lenet: examples scored by EL2N with LeNet-5.
    grand_n_lenet: examples scored by GraNd with LeNet-5.
    el2n_n_resnet: examples scored by EL2N with ResNet-18.
    grand_n_resnet: examples scored by GraNd with ResNet-18.
    el2n_chunk: EL2N chunk size (both models).
    grand_chunk_lenet: GraNd chunk size for LeNet-5.
    grand_chunk_resnet: GraNd chunk size for ResNet-18.
    resnet_input_shape: ``(H, W, C)`` of the ResNet-18 used by ``scores`` and ``fit``.
    resnet_stem: its stem (``"cifar"`` or ``"imagenet"``).
    fit_n_lenet: labeled examples of the LeNet-5 fit.
    fit_batch_lenet: its minibatch size.
    fit_epochs_lenet: epochs of the timed LeNet-5 fit.
    fit_n_resnet: labeled examples of the ResNet-18 fit.
    fit_batch_resnet: its minibatch size.
    fit_epochs_resnet: epochs of the timed ResNet-18 fit.
    al_init_size: ``|L|`` of the AL round.
    al_budget: points queried by the AL round.
    fit_many_ks: numbers of models trained at once.
    fit_many_subset: labeled examples per model.
    fit_many_epochs: epochs per model.
    fit_many_batch: minibatch size.
    fit_many_pool: pool the subsets are drawn from.
    fit_many_seq_k: sequential ``jal.fit`` calls timed for the comparison.
    deepal_rounds: query rounds of the DeepAL+ protocol.
    deepal_epochs: epochs per round of the DeepAL+ protocol.
    seed: seed of every synthetic array and model.
  """
  matmul_n: int = 2048
  matmul_repeats: int = 5
  warmup: int = 1
  repeats: int = 1
  el2n_n_lenet: int = 2048
  grand_n_lenet: int = 2048
  el2n_n_resnet: int = 256
  grand_n_resnet: int = 16
  el2n_chunk: int = 1024
  grand_chunk_lenet: int = 64
  grand_chunk_resnet: int = 16
  resnet_input_shape: tuple[int, int, int] = (28, 28, 1)
  resnet_stem: str = "cifar"
  fit_n_lenet: int = 1000
  fit_batch_lenet: int = 64
  fit_epochs_lenet: int = 3
  fit_n_resnet: int = 512
  fit_batch_resnet: int = 128
  fit_epochs_resnet: int = 1
  al_init_size: int = 100
  al_budget: int = 100
  fit_many_ks: tuple[int, ...] = (1, 4)
  fit_many_subset: int = 200
  fit_many_epochs: int = 20
  fit_many_batch: int = 64
  fit_many_pool: int = 2048
  fit_many_seq_k: int = 2
  deepal_rounds: int = 5
  deepal_epochs: int = 20
  seed: int = 0


_ACCELERATOR_SETTINGS = {
    "matmul_n": 8192, "matmul_repeats": 10, "repeats": 3,
    "el2n_n_lenet": 65536, "grand_n_lenet": 16384, "el2n_n_resnet": 16384,
    "grand_n_resnet": 1024, "el2n_chunk": 4096, "grand_chunk_lenet": 1024,
    "grand_chunk_resnet": 64, "fit_epochs_lenet": 10, "fit_epochs_resnet": 5,
    "fit_n_resnet": 2048, "fit_many_ks": (1, 16, 64, 256), "fit_many_pool": 16384,
    "fit_many_seq_k": 4,
}


def default_settings(backend: str | None = None) -> Settings:
  """The default ``Settings`` for ``backend`` (``jax.default_backend()`` when ``None``).

  CPU gets sizes that keep the whole default benchmark within a few minutes on two cores;
  any other backend (gpu, tpu) gets problems large enough to keep the device busy.
  """
  backend = backend or jax.default_backend()
  if backend == "cpu":
    return Settings()
  return dataclasses.replace(Settings(), **_ACCELERATOR_SETTINGS)


def parse_sections(spec: str | Sequence[str]) -> tuple[str, ...]:
  """Parses ``"machine,scores"`` (or a list) into known section names, in ``SECTIONS`` order.

  Raises:
    ValueError: on an unknown name.
  """
  names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
  names = [s for s in names if s]
  unknown = sorted(set(names) - set(SECTIONS))
  if unknown:
    raise ValueError(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
  return tuple(s for s in SECTIONS if s in names)


def settings_from_config(sizes, backend: str | None = None) -> Settings:
  """``default_settings(backend)`` with the fields of ``sizes`` (the ``sizes`` section of a
  ``bench`` config) that are not ``None``."""
  fields = {f.name for f in dataclasses.fields(Settings)}
  over = {}
  for k, v in sizes.items():
    if k not in fields:
      raise ValueError(f"unknown benchmark size {k!r}; choose from {sorted(fields)}")
    if v is not None:
      over[k] = tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else v
  return dataclasses.replace(default_settings(backend), **over)
