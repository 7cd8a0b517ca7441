#!/bin/bash
# The rest of the out-of-sample `+op10` cells (2026-12-07c/d) on one list for both walkers
# (22:15), with the default's relocate ~40% seed 2 they pair with first; then the default's
# remaining cells (2026-12-07b_default_cells.sh). $1: a pid to wait for first (999999: none).
while kill -0 $1 2>/dev/null; do sleep 10; done
L="relocate:40:rlif_value:2:i relocate:40:rlif_value+op10:2:j hammer:90:rlif_value+op10:1:j"
L="$L pen:90:rlif_value+op10:2:j hammer:90:rlif_value+op10:2:j relocate:40:hg_dagger:2:i"
L="$L relocate:40:bc:2:i relocate:40:rlif_value+op10:1:j hammer:90:rlif_value+op10:0:j"
for c in $L; do IFS=: read t l m s w <<< "$c"
cd /root/g_$w
PYTHONPATH=/root/g_$w nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task $t --tag mae --levels $l --seeds $s --methods $m --eval_episodes 20 --threads 1
done
exec /root/rlif_runs/queue_n.sh
