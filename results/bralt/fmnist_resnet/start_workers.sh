#!/bin/bash
# Starts the protocol's two queue workers (run_queue.sh, one per core), detached from this
# shell so they outlive it; a core whose worker is alive is left alone. Run at each session
# start (workers die with the machine); progress in runs/queue.log and runs/<row>.log.
# usage: results/bralt/fmnist_resnet/start_workers.sh
cd "$(dirname "$0")/../../.." || exit 1
for core in 0 1; do
  if pgrep -f "run_queue.sh $core\$" >/dev/null; then
    echo "core $core: worker already running"
    continue
  fi
  setsid nohup results/bralt/fmnist_resnet/run_queue.sh $core >/dev/null 2>&1 < /dev/null &
  echo "core $core: worker started"
  sleep 8   # the second worker claims after the first
done
