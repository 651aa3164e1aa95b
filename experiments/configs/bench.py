"""The accelerator benchmark (``python -m experiments.bench``): sections and sizes.

``sizes`` holds every field of ``experiments.bench.settings.Settings``; ``None`` takes the
backend default (small problems on a CPU, a few minutes on two cores; larger ones on a GPU /
TPU), e.g. ``--config.sizes.matmul_n=4096 --config.sizes.fit_many_ks="(1, 16)"``.
``protocol="deepal"`` adds the (long) DeepAL+ MNIST / ResNet-18 protocol.
"""

from ml_collections import ConfigDict, config_dict

_INT_SIZES = (
    "matmul_n", "matmul_repeats", "warmup", "repeats", "el2n_n_lenet", "grand_n_lenet",
    "el2n_n_resnet", "grand_n_resnet", "el2n_chunk", "grand_chunk_lenet", "grand_chunk_resnet",
    "fit_n_lenet", "fit_batch_lenet", "fit_epochs_lenet", "fit_n_resnet", "fit_batch_resnet",
    "fit_epochs_resnet", "al_init_size", "al_budget", "fit_many_subset", "fit_many_epochs",
    "fit_many_batch", "fit_many_pool", "fit_many_seq_k", "deepal_rounds", "deepal_epochs", "seed")


def get_config():
  sizes = {k: config_dict.placeholder(int) for k in _INT_SIZES}
  sizes.update(resnet_input_shape=config_dict.placeholder(tuple),
               resnet_stem=config_dict.placeholder(str),
               fit_many_ks=config_dict.placeholder(tuple))
  return ConfigDict({"binary": "bench", "sections": "machine,scores,fit,al_round,fit_many",
                     "protocol": "none", "sizes": sizes})
