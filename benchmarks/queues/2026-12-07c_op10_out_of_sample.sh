#!/bin/bash
# Does the operator's noise, read from its demonstrations (benchmarks/operator_noise.py), say
# where weighting its corrections 10x pays? Fitted so far: relocate ~10% (noise read 0.21) +19
# with `+op10`, pen ~40% (0.40) -8, hammer ~10% (0.43) seed 0 -50. Out of sample, the two cells
# the reading calls precise and that have room: pen ~90% (0.00, the undegraded expert; the
# default 75 against its 82) and relocate ~40% (0.17), `+op10` from /root/g_j (b13d6f1), paired
# with the default's runs of the same starts; the default's relocate ~40% seeds 1-2 and their
# baselines from /root/g_i (7f5e611) in between. Then the default's remaining cells
# (2026-12-07b_default_cells.sh). $1: a pid to wait for first (999999 for none).
while kill -0 $1 2>/dev/null; do sleep 10; done
L="pen:90:rlif_value+op10:0:j relocate:40:rlif_value+op10:0:j relocate:40:hg_dagger:1:i relocate:40:bc:1:i"
L="$L pen:90:rlif_value+op10:1:j relocate:40:rlif_value+op10:1:j relocate:40:hg_dagger:2:i"
L="$L relocate:40:bc:2:i pen:90:rlif_value+op10:2:j relocate:40:rlif_value+op10:2:j"
for c in $L; do IFS=: read t l m s w <<< "$c"
cd /root/g_$w
PYTHONPATH=/root/g_$w nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task $t --tag mae --levels $l --seeds $s --methods $m --eval_episodes 20 --threads 1
done
exec /root/rlif_runs/queue_n.sh
