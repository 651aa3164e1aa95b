#!/bin/bash
# Issue 16: regenerates every report of the protocol from the runs (table.md, penalty.md,
# picks.md, summary.json, curve.png, verdict.md, pick_quality.md), then prints the verdict.
# usage: results/bralt/fmnist_resnet/collect.sh [DATA_DIR]   (default ../shared/data)
set -e
cd "$(dirname "$0")/../../.."
here=results/bralt/fmnist_resnet
python $here/make_table.py
python $here/verdict.py
nice python $here/pick_quality.py --data_dir="${1:-../shared/data}" > /dev/null
cat $here/verdict.md
