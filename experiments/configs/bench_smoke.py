"""Seconds-long benchmark: tiny ``machine`` and LeNet ``scores`` sections (used by the tests)."""

from experiments.configs import bench


def get_config():
  c = bench.get_config()
  c.sections = "machine,scores"
  c.sizes.update(matmul_n=128, matmul_repeats=2, warmup=1, repeats=2, el2n_n_lenet=40,
                 grand_n_lenet=12, el2n_n_resnet=0, grand_n_resnet=0, el2n_chunk=16,
                 grand_chunk_lenet=8)
  return c
