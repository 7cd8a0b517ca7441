#!/bin/bash
# The pen 100k grid (results/rlif_pen_100k): the 20k headline runs of rlif_value and hg_dagger,
# continued in stages of 20k env steps (rounds 10, 15, 20, 25), so every cell reaches 40k before
# any reaches 60k. Run from a separate worktree (WORKSPACE.md), two processes on two cores:
#   bash benchmarks/pen_100k_stages.sh 1 &  bash benchmarks/pen_100k_stages.sh 2 &
# Resumable: rerun after a kill. The first call copies the 20k runs once (same round 0..5 data).
set -e
cd "$(dirname "$0")/.."
RUNS=${RLIF_RUNS:-$HOME/rlif_runs}/benchmark
PY=${PYTHON:-/work/main/.venv/bin/python}
for l in 10 40 90; do for m in rlif_value hg_dagger; do for s in 0 1 2; do
  if [ ! -d "$RUNS/pen_100k/level$l/$m-s$s" ]; then
    mkdir -p "$RUNS/pen_100k/level$l"; cp -a "$RUNS/pen/level$l/$m-s$s" "$RUNS/pen_100k/level$l/"
  fi
done; done; done
if [ "$1" = 1 ]; then
  cells="rlif_value:40:0 rlif_value:40:1 hg_dagger:90:0 rlif_value:40:2 hg_dagger:90:1 rlif_value:90:0 hg_dagger:90:2 rlif_value:90:1 hg_dagger:10:0"
else
  cells="rlif_value:10:0 hg_dagger:40:0 rlif_value:10:1 hg_dagger:40:1 rlif_value:10:2 hg_dagger:40:2 rlif_value:90:2 hg_dagger:10:1 hg_dagger:10:2"
fi
for rounds in 10 15 20 25; do for cell in $cells; do IFS=: read m l s <<< "$cell"
  PYTHONPATH=$PWD nice -n 19 "$PY" benchmarks/rlif_benchmark.py --threads 1 --task pen \
    --tag 100k --rounds $rounds --levels $l --seeds $s --methods $m --eval_episodes 20
done; done
