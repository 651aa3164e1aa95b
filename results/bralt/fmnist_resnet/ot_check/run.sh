#!/bin/bash
# Issue 16, point 3: round 0 of one BRAL-T trial of the protocol (pinned code in /work/bg, as
# run_queue.sh), stopped once round 0's selection is checkpointed, for compare_picks.py.
# usage: run.sh NAME SEED [strategy kwargs...]   e.g.
#   run.sh paper 0;  run.sh conc 0 max_points=256 rel_epsilon=0.01 ot_momentum=1.5
# then copy $OUT/NAME/bral_t/seed0/history.json to NAME_seed0.json here ($OUT: /tmp/otcheck).
mkdir -p ${OUT:-/tmp/otcheck}
name=$1; seed=$2; shift 2
args=(); for k in "$@"; do args+=("--config.strategy.kwargs.$k"); done
cd /work/bg
taskset -c 0 nice -n 5 python -m experiments.compare --isolate --config=bralt_table5_fashion_mnist \
  --config.loop.rounds=1 --data_dir=/work/shared/data --seeds=$seed --strategies=bral_t "${args[@]}" \
  --workdir=${OUT:-/tmp/otcheck}/$name > ${OUT:-/tmp/otcheck}/$name.log 2>&1 &
pid=$!
h=${OUT:-/tmp/otcheck}/$name/bral_t/seed$seed/history.json
while kill -0 $pid 2>/dev/null; do
  if [ -f $h ] && python -c "import json,sys; sys.exit(0 if len(json.load(open('$h'))['rounds'])>=1 else 1)" 2>/dev/null; then
    pkill -P $pid; kill $pid; sleep 2; pkill -f "workdir=${OUT:-/tmp/otcheck}/$name"; break
  fi
  sleep 10
done
echo done >> ${OUT:-/tmp/otcheck}/$name.log
