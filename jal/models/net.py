"""The functional face of a model: a static ``Net`` plus a pytree of variables.

NNX modules are split once (``nnx.split``); every library function then takes the static
``Net`` and the ``Variables`` pytree, so ``jax.jit``/``jax.vmap`` see plain arrays
(the functional NNX style of flax's ``nnx_toy_examples/01_functional_api.py``).
"""

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
from flax import nnx

from jal.models.lenet import LeNet5
from jal.models.mlp import MLP
from jal.models.resnet import ResNet18

__all__ = ["Net", "Variables", "check_model", "make_net", "model_options", "MODELS"]


class Variables(NamedTuple):
  """Model state as a pytree.

  Attributes:
    params: trainable ``nnx.Param`` state.
    extra: everything else (BatchNorm running statistics); may be empty.
  """
  params: Any
  extra: Any


def _mlp(input_shape, num_classes, rngs, **kw):
  h, w, c = input_shape
  return MLP(h * w * c, num_classes, rngs=rngs, **kw)


def _lenet(input_shape, num_classes, rngs, **kw):
  return LeNet5(tuple(input_shape), num_classes, rngs=rngs, **kw)


def _resnet18(input_shape, num_classes, rngs, **kw):
  return ResNet18(input_shape[-1], num_classes, rngs=rngs, **kw)


MODELS: dict[str, Callable[..., nnx.Module]] = {
    "mlp": _mlp,
    "lenet": _lenet,
    "resnet18": _resnet18,
}
_BUILT_IN = dict(MODELS)
_CLASSES = {"mlp": MLP, "lenet": LeNet5, "resnet18": ResNet18}  # whose options MODELS passes on


def model_options(name: str) -> list[str] | None:
  """The keyword options model ``name`` takes (its constructor's keyword-only arguments);
  ``None`` for a model registered in ``MODELS`` by a user, whose options are not known."""
  if name not in _CLASSES or MODELS[name] is not _BUILT_IN[name]:
    return None
  params = inspect.signature(_CLASSES[name].__init__).parameters.values()
  return sorted(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name != "rngs")


class Net(NamedTuple):
  """Static description of a network (hashable, usable as a ``jit`` static argument).

  Attributes:
    graphdef: the NNX graph definition.
    name: registry name.
    num_classes: ``K``.
    embed_dim: embedding width ``D``.
    dropout: dropout rate before the head.
    init: ``key -> Variables``; pure, so it can be ``vmap``ped over keys.
  """
  graphdef: Any
  name: str
  num_classes: int
  embed_dim: int
  dropout: float
  init: Callable[[jax.Array], Variables]

  def apply(self, variables: Variables, x: jax.Array, *, train: bool = False,
            dropout: bool | None = None, key: jax.Array | None = None):
    """Runs the network.

    Args:
      variables: the model state.
      x: ``[n, H, W, C]`` images.
      train: training mode (BatchNorm batch statistics, dropout on).
      dropout: force dropout on/off independently of ``train`` (MC dropout: eval-mode
        BatchNorm with dropout on); ``None`` follows ``train``.
      key: PRNG key for dropout (required when dropout is active).

    Returns:
      ``(logits [n, K], embedding [n, D], new_extra)``; ``new_extra`` holds updated BatchNorm
      statistics in training mode.
    """
    # copy=True: fresh Variables at the current trace level, so BatchNorm may update its
    # statistics inside jax.grad / vmap (the state pytrees may come from an outer trace).
    model = nnx.merge(self.graphdef, variables.params, variables.extra, copy=True)
    rngs = nnx.Rngs(dropout=key) if key is not None else None
    logits, emb = model(x, train=train, dropout=dropout, rngs=rngs)
    _, _, extra = nnx.split(model, nnx.Param, ...)
    return logits, emb, extra

  def apply_features(self, variables: Variables, x: jax.Array, *, train: bool = False,
                     dropout: bool | None = None, key: jax.Array | None = None):
    """``apply`` that also returns the model's intermediate features.

    They are what a loss-prediction head reads (``jal.strategies.learned``): the four stage
    outputs of ResNet-18, LeNet-5's pooled conv maps and fully connected activations, the
    MLP's hidden activations (each model's ``__call__(features=True)`` documents its own).

    Returns:
      ``(logits [n, K], embedding [n, D], features, new_extra)``; ``features`` is a tuple of
      arrays ``[n, h, w, c]`` (feature maps) or ``[n, c]`` (vectors).
    """
    model = nnx.merge(self.graphdef, variables.params, variables.extra, copy=True)
    rngs = nnx.Rngs(dropout=key) if key is not None else None
    logits, emb, feats = model(x, train=train, dropout=dropout, rngs=rngs, features=True)
    _, _, extra = nnx.split(model, nnx.Param, ...)
    return logits, emb, feats, extra

  def __hash__(self):
    return hash((self.graphdef, self.name))

  def __eq__(self, other):
    return isinstance(other, Net) and (self.graphdef, self.name) == (other.graphdef, other.name)


def check_model(name: str, dropout: float | None = 0.0, options: Iterable[str] = ()) -> None:
  """Raises ``ValueError`` unless ``name`` is a model of ``MODELS``, ``dropout`` lies in
  [0, 1) and the model takes every keyword option in ``options`` (``make_net``'s checks that
  need no data)."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
  known = model_options(name)
  unknown = sorted(set(options) - set(known)) if known is not None else []
  if unknown:
    raise ValueError(f"model {name!r} takes no option {', '.join(map(repr, unknown))}; "
                     f"its options: {known}")
  if dropout is not None and not 0 <= float(dropout) < 1:
    raise ValueError(f"dropout must lie in [0, 1), got {dropout}")


def make_net(name: str, input_shape: tuple[int, int, int], num_classes: int, **kwargs) -> Net:
  """Builds the static ``Net`` for a registered model.

  Args:
    name: one of ``MODELS`` (``"mlp"``, ``"lenet"``, ``"resnet18"``).
    input_shape: ``(H, W, C)`` of one image.
    num_classes: number of classes ``K``.
    **kwargs: model options (``hidden``, ``dropout``, ``stem``, ``width``).

  Returns:
    A ``Net`` whose ``init(key)`` gives fresh ``Variables``.

  Example:
    >>> import jax
    >>> net = make_net("mlp", (8, 8, 1), 10, hidden=(32,))
    >>> v = net.init(jax.random.key(0))
    >>> net.apply(v, jax.numpy.zeros((4, 8, 8, 1)))[0].shape
    (4, 10)
  """
  check_model(name, kwargs.get("dropout", 0.0), kwargs)
  if len(input_shape) != 3:
    raise ValueError(f"input_shape must be (H, W, C), got {input_shape}")
  if not (int(num_classes) == num_classes and num_classes >= 2):
    raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
  ctor = MODELS[name]
  input_shape = tuple(int(s) for s in input_shape)
  abstract = nnx.eval_shape(lambda: ctor(input_shape, num_classes, nnx.Rngs(0), **kwargs))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, ...)

  def init(key: jax.Array) -> Variables:
    model = ctor(input_shape, num_classes, nnx.Rngs(params=key), **kwargs)
    _, params, extra = nnx.split(model, nnx.Param, ...)
    return Variables(params, extra)

  return Net(graphdef, name, int(num_classes), int(abstract.embed_dim),
             float(abstract.dropout_rate), init)
