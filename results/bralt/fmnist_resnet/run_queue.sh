#!/bin/bash
# Issue 16, point 2: BRAL-T's Fashion-MNIST protocol with ResNet-18 (bralt_table5_fashion_mnist),
# first 10 rounds (Q = 2,500), seeds 0-2, one trial per task, seed-major so paired rows land first.
# The last row (session 22) is a control: Random's picks with BRAL-T's SuperLoss training.
# usage: run_queue.sh CORE   -- a worker pinned to CPU CORE; start one per core.
# Workers share the task list: a task is claimed by mkdir (with the worker's pid; a dead worker's
# claim is taken over); trials resume from their checkpoint, so rerunning the workers after a
# stop is safe. Start the second worker a few seconds after the first. Never edit this file in
# place while workers run (bash reads it as it goes): write a copy and mv it over.
# Code: the worktree $BG at commit $PIN (made when missing); runs: $RUNS/<row>/<strategy>/seed<k>.
# $RUNS is tracked by git (only claims/, the logs and workdir locks are ignored): a checkpoint holds the labeled
# mask, history, strategy state and key, not the network (retrained each round), so it is small;
# commit it at every stop, since a fresh checkout keeps only what landed (session 21 lost the
# git-ignored .runs of sessions 19-20 this way).
# Collect: python results/bralt/fmnist_resnet/make_table.py
core=$1
BG=${BG:-/work/bg}
PIN=33b1f93   # the code every row of this table runs
if [ ! -d $BG ]; then
  git -C /work/main worktree prune && git -C /work/main worktree add --detach $BG $PIN || exit 1
fi
[ "$(git -C $BG rev-parse --short=7 HEAD)" = $PIN ] || { echo "$BG is not at $PIN" >&2; exit 1; }
RUNS=${RUNS:-/work/main/results/bralt/fmnist_resnet/runs}
DATA=${DATA:-/work/shared/data}
OT="max_points=256 rel_epsilon=0.01 ot_momentum=1.5"   # the reduced protocol's CPU concessions
rows=("random:random:" "margin:margin:" "bral_t:bral_t:$OT" "bral_t_fill:bral_t:$OT fill=score"
      "lossprediction:lossprediction:" "waal:waal:unlabeled_per_epoch=3000"
      "random_superloss:random:train.superloss=true")   # control: BRAL-T's training, Random's picks
mkdir -p $RUNS/claims
# Seed-major, except that the last seed's WAAL (≈ 3.5 h, 4x any other trial) goes first among
# that seed's rows, so the longest trial does not start last (session 24), and its Margin
# (in the issue's table, not in Table 1's claims) goes last (session 25).
tasks=()
for seed in 0 1 2; do
  if [ $seed = 2 ]; then
    for i in 5 0 2 3 4 6 1; do tasks+=("2 ${rows[$i]}"); done
    continue
  fi
  for row in "${rows[@]}"; do tasks+=("$seed $row"); done
done
for task in "${tasks[@]}"; do
  seed=${task%% *}; row=${task#* }
  name=${row%%:*}; rest=${row#*:}; strat=${rest%%:*}; kw=${rest#*:}
  claim=$RUNS/claims/$name.$seed
  [ -e $claim/done ] && continue
  if ! mkdir $claim 2>/dev/null; then   # claimed: skip unless its worker is gone
    grep -qs run_queue /proc/"$(cat $claim/pid 2>/dev/null)"/cmdline && continue
  fi
  echo $$ > $claim/pid
  args=()   # strategy kwargs, or train.<field>=<value> for the TrainConfig
  for k in $kw; do
    case $k in train.*) args+=("--config.$k") ;; *) args+=("--config.strategy.kwargs.$k") ;; esac
  done
  echo "$(date -u +%FT%T) core $core start $name seed $seed" >> $RUNS/queue.log
  (cd $BG && taskset -c $core python -m experiments.compare --isolate \
    --config=bralt_table5_fashion_mnist --config.loop.rounds=10 --data_dir=$DATA \
    --seeds=$seed --strategies=$strat "${args[@]}" --workdir=$RUNS/$name \
    >> $RUNS/$name.log 2>&1)
  rc=$?
  echo "$(date -u +%FT%T) core $core done $name seed $seed rc $rc" >> $RUNS/queue.log
  [ $rc -eq 0 ] && touch $claim/done   # else retried on the next start
done
