"""The same ResNet-18 variants in PyTorch, timed the way ``experiments.bench.resnet`` times
jal's: inference in chunks, an Adam training step, and GraNd by a per-example loop.

PyTorch is an optional peer (``pip install torch`` in a scratch environment); nothing in jal
or its tests imports this module. The architecture follows DeepAL+'s ``nets.py``: ResNet-18
basic blocks, optional 1×1 conv 1→3 adapter for grayscale input, and the stems of
``jal.models.ResNet18``.
"""

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["make_resnet18", "inference", "train_steps", "grand"]


class _Block(nn.Module):

  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.short = None
    if stride != 1 or cin != cout:
      self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                 nn.BatchNorm2d(cout))

  def forward(self, x):
    h = F.relu(self.bn1(self.conv1(x)))
    h = self.bn2(self.conv2(h))
    return F.relu(h + (self.short(x) if self.short is not None else x))


class _ResNet18(nn.Module):

  def __init__(self, in_channels, num_classes, stem):
    super().__init__()
    self.adapter = nn.Conv2d(1, 3, 1) if in_channels == 1 else None
    c = 3 if in_channels == 1 else in_channels
    if stem == "imagenet":
      self.conv1 = nn.Conv2d(c, 64, 7, 2, 3, bias=False)
    else:
      self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.pool = stem != "cifar"
    blocks, cin = [], 64
    for stage, cout in enumerate((64, 128, 256, 512)):
      for i in range(2):
        blocks.append(_Block(cin, cout, 2 if stage and not i else 1))
        cin = cout
    self.blocks = nn.Sequential(*blocks)
    self.fc = nn.Linear(512, num_classes)

  def forward(self, x):
    if self.adapter is not None:
      x = self.adapter(x)
    h = F.relu(self.bn1(self.conv1(x)))
    if self.pool:
      h = F.max_pool2d(h, 3, 2, 1)
    h = self.blocks(h)
    return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def make_resnet18(input_shape, num_classes: int, stem: str, seed: int = 0) -> nn.Module:
  """DeepAL+-style ResNet-18 for ``(H, W, C)`` inputs."""
  torch.manual_seed(seed)
  return _ResNet18(input_shape[-1], num_classes, stem)


def _images(n, input_shape, seed):
  h, w, c = input_shape
  g = torch.Generator().manual_seed(seed)
  return torch.randn(n, c, h, w, generator=g), torch.randint(0, 10, (n,), generator=g)


def _best(fn, repeats):
  fn()
  runs = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    runs.append(time.perf_counter() - t)
  return min(runs), float(np.median(runs))


def inference(model, input_shape, n: int, chunk: int, repeats: int) -> dict:
  """Examples/s of eval-mode forward passes over ``n`` images in chunks of ``chunk``."""
  x, _ = _images(n, input_shape, 0)
  model.eval()

  def run():
    with torch.no_grad():
      for i in range(0, n, chunk):
        model(x[i:i + chunk])

  best, med = _best(run, repeats)
  return {"examples_per_second": n / best, "median_examples_per_second": n / med}


def train_steps(model, input_shape, batch: int, steps: int, repeats: int) -> dict:
  """Seconds per Adam (lr 1e-3) step of cross-entropy training on batches of ``batch``."""
  x, y = _images(batch * steps, input_shape, 1)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  model.train()

  def run():
    for i in range(steps):
      sl = slice(i * batch, (i + 1) * batch)
      opt.zero_grad()
      F.cross_entropy(model(x[sl]), y[sl]).backward()
      opt.step()

  best, med = _best(run, repeats)
  return {"seconds_per_step": best / steps, "median_seconds_per_step": med / steps}


def grand(model, input_shape, n: int, repeats: int) -> dict:
  """Examples/s of GraNd, ‖∇θ CE‖ per example, by a per-example backward loop (eval mode)."""
  x, y = _images(n, input_shape, 2)
  model.eval()
  params = [p for p in model.parameters() if p.requires_grad]

  def run():
    for i in range(n):
      g = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params)
      torch.sqrt(sum((t * t).sum() for t in g))

  best, med = _best(run, repeats)
  return {"examples_per_second": n / best, "median_examples_per_second": n / med}
