#!/bin/bash
# The default of 2026-12-07 (7f5e611, in the worktree /root/g_i) on the cells it has not run,
# reordered from 2026-12-07_default_cells.sh by what each row decides: relocate ~40% (does the
# relocate ~10% gap to HG-DAgger hold at a better expert?), pen rlif_random at every level (the
# pen table's fifth column with the default), relocate ~90%, then door ~40/10/90%. Grids
# relocate_mae, pen_mae, door_mae. Two walkers over the same list, started 20 s apart; a walker
# skips a run the other holds, and a finished run is skipped.
# (From 22:50 to 23:15 the default was operator_weight = "auto" and this ran from /root/g_k; back
# to /root/g_i when hammer ~90% showed "auto" unsafe. Pen ~40% rlif_random seed 0 started from g_k;
# pen ~40% reads noisy (0.40), so "auto" weighs 1 there and that run is the default's as well.)
cd /root/g_i
L=""
for lv in relocate:40 pen:40 pen:10 pen:90 relocate:90 door:40 door:10 door:90; do
  case $lv in pen:*) M="rlif_random";; *) M="rlif_value hg_dagger bc";; esac
  for s in 0 1 2; do for m in $M; do L="$L $lv:$m:$s"; done; done
done
for c in $L; do IFS=: read t l m s <<< "$c"
PYTHONPATH=/root/g_i nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task $t --tag mae --levels $l --seeds $s --methods $m --eval_episodes 20 --threads 1
done
