#!/bin/bash
# `+op10` on hammer ~90% (noise read 0.185 from its demonstrations: precise, like relocate's),
# 3 seeds from /root/g_j (b13d6f1), paired with the default's hammer_mae runs of the same starts
# (92 +- 6 on 20 episodes, HG-DAgger 100): the third out-of-sample cell of
# 2026-12-07c_op10_out_of_sample.sh, which this queue then `exec`s. $1: a pid to wait for first.
while kill -0 $1 2>/dev/null; do sleep 10; done
cd /root/g_j
for s in 0 1 2; do
PYTHONPATH=/root/g_j nice -n 5 /work/main/.venv/bin/python benchmarks/rlif_benchmark.py --task hammer --tag mae --levels 90 --seeds $s --methods rlif_value+op10 --eval_episodes 20 --threads 1
done
exec /root/rlif_runs/queue_p.sh 999999
