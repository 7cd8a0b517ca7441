#!/bin/bash
# Pen ~10% at the full budget (100k env steps, 25 rounds x 20 episodes), seed 0, grid
# pen_mae100k, from /root/g_p (385b109; from 00:17 at the next commit, whose rlif.toml has the setting): the behaviour term over every demonstrated transition of
# both pools alike (`bcpool`), with and without the policy's accepted actions (`+bc_demo`), beside
# the default (50 on 100 episodes) and BC (76) already there from the same initial policy. Then
# HG-DAgger at the same budget, then the earlier queue (2026-12-07e_out_of_sample_rest.sh).
# $1: which walker (a or b).
cd /root/g_p
run() { PYTHONPATH=/root/g_p nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py \
  --task pen --tag mae100k --rounds 25 --levels 10 --seeds 0 --methods $1 --eval_episodes 20 --threads 1; }
if [ "$1" = a ]; then run rlif_value+bcpool; run hg_dagger; else run rlif_value+bcpool+bc_demo; fi
exec /root/rlif_runs/queue_r.sh 999999
