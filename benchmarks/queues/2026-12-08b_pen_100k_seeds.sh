#!/bin/bash
# Pen ~10% at 100k env steps (25 rounds x 20 episodes), seeds 1 and 2, grid pen_mae100k, from
# /root/g_p (beb5891): the term over demonstrated transitions of both pools without the accepted
# actions (`+bcpool+bc_demo`, seed 0: the best RLIF row on 100 episodes), the default, HG-DAgger
# and BC, so the 100k comparison has 3 seeds. Walker 1 runs the variant and HG-DAgger, walker 2
# the default and BC, seed 1 first so each seed's pair is done together; each then `exec`s
# 2026-12-07e_out_of_sample_rest.sh (queue_r.sh), the cells left from 2026-12-07.
# $1: the walker (1 or 2); $2: a pid to wait for first (999999: none).
while kill -0 $2 2>/dev/null; do sleep 10; done
cd /root/g_p
if [ "$1" = 1 ]; then L="rlif_value+bcpool+bc_demo:1 rlif_value+bcpool+bc_demo:2 hg_dagger:1 hg_dagger:2"
else L="rlif_value:1 rlif_value:2 bc:1 bc:2"; fi
for c in $L; do IFS=: read m s <<< "$c"
PYTHONPATH=/root/g_p nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py \
  --task pen --tag mae100k --rounds 25 --levels 10 --seeds $s --methods $m --eval_episodes 20 --threads 1
done
exec /root/rlif_runs/queue_r.sh 999999
