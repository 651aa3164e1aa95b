#!/bin/bash
# Issue 16, point 4: the paper's 40-round Fashion-MNIST protocol (bralt_table5_fashion_mnist) on
# the GPU machine, as far as one call gets; the next call resumes it.
# usage (there, from the repository root; prepare.sh has filled .whl/ here first):
#   results/bralt/fmnist_resnet/gpu/run_device.sh SECONDS [SEED] [extra --config flags...]
# One process per row, all on the one GPU at once (each may take 1/8 of its memory), each
# `experiments.al` resuming its workdir gpu/runs/<row>/<strategy>/seed<SEED> and stopped after
# SECONDS; the loop checkpoints every round (labeled mask, history, strategy state: ~100 KB), so a
# stop loses at most the round in flight. The runs come back as $OUT/runs.tar.gz (unpack it here
# with `tar -xzf runs.tar.gz -C results/bralt/fmnist_resnet/gpu` and commit) and the rows' logs
# as $OUT/log.txt. The rows are the CPU table's (run_queue.sh) with the paper's own OT settings
# for BRAL-T (no CPU concessions); WAAL keeps its 3,000-row cap.
# Device call: run(command="results/bralt/fmnist_resnet/gpu/run_device.sh 420", carry=[".whl"],
#                  timeout_s=540)
set -uo pipefail
secs=${1:?usage: run_device.sh SECONDS [SEED] [extra flags]}; seed=${2:-0}; shift; shift || true
HERE=results/bralt/fmnist_resnet/gpu
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=${PY:-python3}
CONFIG=${CONFIG:-bralt_table5_fashion_mnist}   # another only to try the script (a small one)
SITE=${SITE:-/tmp/jal_site}
$PY -m pip install -q --no-deps --no-index --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.12
rows=("random:random:" "margin:margin:" "bral_t:bral_t:" "bral_t_fill:bral_t:fill=score"
      "lossprediction:lossprediction:" "waal:waal:unlabeled_per_epoch=3000"
      "random_superloss:random:train.superloss=true")
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  $PY -c "import jax; print('jax', jax.__version__, jax.devices())"; } > "$OUT/log.txt"
pids=()
for row in "${rows[@]}"; do
  name=${row%%:*}; rest=${row#*:}; strat=${rest%%:*}; kw=${rest#*:}
  args=()
  for k in $kw; do
    case $k in train.*) args+=("--config.$k") ;; *) args+=("--config.strategy.kwargs.$k") ;; esac
  done
  mkdir -p $HERE/runs/$name
  timeout "$secs" $PY -m experiments.al --config=$CONFIG \
    --config.strategy.name=$strat --config.seed=$seed --data_dir=.whl/data "${args[@]}" "$@" \
    --workdir=$HERE/runs/$name/$strat/seed$seed >> $HERE/runs/$name.seed$seed.log 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for row in "${rows[@]}"; do
  name=${row%%:*}
  { echo "== $name"; grep -v "^I[0-9]" $HERE/runs/$name.seed$seed.log | tail -n 15; } >> "$OUT/log.txt"
done
tar -czf "$OUT/runs.tar.gz" -C $HERE --exclude=.lock --exclude=curve.png runs
ls -la "$OUT"
