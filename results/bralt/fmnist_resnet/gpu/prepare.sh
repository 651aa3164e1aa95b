#!/bin/bash
# Issue 16, point 4, run here before a device call: fills the git-ignored .whl/ (carried to the
# GPU machine) with what its image lacks: the wheels of ott-jax, jaxopt and ml_collections
# (pure Python; the image has jax, flax, optax, chex, absl-py, lineax, scikit-learn, matplotlib)
# and the Fashion-MNIST IDX files (../shared does not travel). About 31 MiB of the 64 MiB carry.
# usage: results/bralt/fmnist_resnet/gpu/prepare.sh   (from the repository root)
set -euo pipefail
DATA=${DATA:-../shared/data}
mkdir -p .whl/data/fashion_mnist
pip download -q --no-deps -d .whl ott-jax==0.6.0 jaxopt==0.8.5 ml_collections==1.1.0
cp "$DATA"/fashion_mnist/*.gz .whl/data/fashion_mnist/
du -sh .whl
