#!/bin/bash
# From /root/g_j at b13d6f1. Relocate ~10%: `+bc_demo+prior0.25` 80 (85, 60, 95) against the
# default's 50 and HG-DAgger's 87; `+op10` seed 0 30 -> 65-75. Both candidates on pen ~40% (where
# `bc_demo` alone was -10) and hammer ~10%, seeds interleaved, then 2026-12-07_default_cells.sh.
# $1: the pid of a running walker to wait for first (an unused pid, e.g. 999999: none).
while kill -0 $1 2>/dev/null; do sleep 10; done
cd /root/g_j
L="relocate:10:op10:1 relocate:10:op10:2"
for s in 0 1 2; do L="$L pen:40:op10:$s pen:40:bc_demo+prior0.25:$s"; done
for s in 0 1 2; do L="$L hammer:10:op10:$s hammer:10:bc_demo+prior0.25:$s"; done
for c in $L; do IFS=: read t l v s <<< "$c"
PYTHONPATH=/root/g_j nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task $t --tag mae --levels $l --seeds $s --methods rlif_value+$v --eval_episodes 20 --threads 1
done
exec "$(dirname "$0")/2026-12-07_default_cells.sh"
