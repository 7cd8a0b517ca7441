#!/bin/bash
# The default of 2026-12-07 (7f5e611) on the cells it has not run: relocate ~10% baselines, then
# relocate ~40% and ~90% (rlif_value, hg_dagger, bc), pen rlif_random at every level, then door
# ~40/10/90% (rlif_value, hg_dagger, bc): grids relocate_mae, pen_mae, door_mae. Two walkers
# over the same list; a walker skips a run the other holds.
cd /root/g_i
L="relocate:10:hg_dagger:0 relocate:10:bc:0 relocate:10:hg_dagger:1 relocate:10:bc:1 relocate:10:hg_dagger:2 relocate:10:bc:2"
for lv in relocate:40 relocate:90 pen:10 pen:40 pen:90 door:40 door:10 door:90; do
  case $lv in pen:*) M="rlif_random";; *) M="rlif_value hg_dagger bc";; esac
  for s in 0 1 2; do for m in $M; do L="$L $lv:$m:$s"; done; done
done
for c in $L; do IFS=: read t l m s <<< "$c"
PYTHONPATH=/root/g_i nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task $t --tag mae --levels $l --seeds $s --methods $m --eval_episodes 20 --threads 1
done
