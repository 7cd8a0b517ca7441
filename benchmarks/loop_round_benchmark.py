r"""Wall time of the closed loop's rounds, before and after a change, measured in one run.

  python benchmarks/loop_round_benchmark.py [--baseline GIT_REF] [--rounds 2] [--repeats 1]

Both versions run the same rounds from the same starting point: a pen run (rlif_value, ~40%
expert, the RLIF benchmark's settings: 20 episodes and 1,000 learner train calls per round, 20
evaluation episodes) whose round 0 (demonstrations, initial BC policy) is prepared once and
copied. Each version is a separate process that runs rounds 1..N of a copy in its own source
tree (the baseline is a `git worktree` of GIT_REF), alternating versions when repeated, so a
round pays what it pays in the benchmark grid: a process that runs several rounds. Every stage
is timed from outside (the same wrappers around `RlifLoop` in both trees):

  collect      the deployed policy under the expert and the intervention model -> raw logs
  append       the pipeline appends the round to the dataset
  train_calls  the learner's train calls (the first round's first call includes tracing)
  export       PolicySaver export
  train_other  the rest of training: agent construction, restore, data loading, checkpoints
  load_policy  loading the exported SavedModel
  evaluate     the policy alone on the evaluation episodes

Wait for a quiet machine (no grid, tests or helpers on the cores): the script checks the load
average and refuses to time above --max_load unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

STAGES = ('collect', 'append', 'train_calls', 'export', 'train_other', 'load_policy',
          'evaluate')

# Runs in a version's source tree: times every stage of rounds 1..N of the copied run.
DRIVER = r'''
import json, os, sys, time
sys.path.insert(0, os.getcwd())
from sim import collector, experts, loop
from trainer import train_loop
spec_kwargs, run_dir, expert_dir, reference_dir = json.loads(sys.argv[1])
times = []

def wrap(owner, name, stage):
  original = getattr(owner, name)
  def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
      return original(*args, **kwargs)
    finally:
      times[-1][stage] = times[-1].get(stage, 0.0) + time.perf_counter() - start
  setattr(owner, name, timed)

wrap(loop.RlifLoop, '_collect', 'collect')
wrap(loop.RlifLoop, '_append', 'append')
wrap(loop.RlifLoop, '_train', 'train')
wrap(train_loop.TrainLoop, '_train_until', 'train_calls')
wrap(train_loop.TrainLoop, '_export', 'export')
wrap(collector, 'load_saved_policy', 'load_policy')
wrap(loop, 'evaluate', 'evaluate')
spec = loop.LoopSpec(**spec_kwargs)
the_loop = loop.RlifLoop(spec, run_dir, expert_dir, reference_dir, log=lambda m: None)
record = the_loop._record
def record_and_time(row):
  record(row)
  times[-1]['round'] = row['round']
  times[-1]['total'] = time.perf_counter() - times[-1].pop('_start')
  times[-1]['success'] = row['eval']['success_rate']
  times.append({'_start': time.perf_counter()})
the_loop._record = record_and_time
times.append({'_start': time.perf_counter()})
the_loop.run()
rows = [t for t in times if 'round' in t]
for t in rows:
  t['train_other'] = t.pop('train') - t.get('train_calls', 0.0) - t.get('export', 0.0)
print('ROUNDS ' + json.dumps(rows))
'''


def load_average() -> float:
  return os.getloadavg()[0]


def prepare_base(spec_kwargs, base_dir, expert_dir, reference_dir):
  """Round 0 of the benchmark's run (demonstrations, initial policy), made once."""
  from sim import loop
  if os.path.exists(os.path.join(base_dir, 'results.jsonl')):
    return
  spec = loop.LoopSpec(**{**spec_kwargs, 'rounds': 0})
  loop.RlifLoop(spec, base_dir, expert_dir, reference_dir).run()


def run_version(tree, spec_kwargs, base_dir, expert_dir, reference_dir, env):
  with tempfile.TemporaryDirectory(prefix='loop_round_') as scratch:
    run_dir = os.path.join(scratch, 'run')
    shutil.copytree(base_dir, run_dir)
    out = subprocess.run(
        [sys.executable, '-c', DRIVER,
         json.dumps([spec_kwargs, run_dir, expert_dir, reference_dir])],
        cwd=tree, env=env, capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f'{tree}: the round run failed\n{out.stderr[-3000:]}')
  line = [l for l in out.stdout.splitlines() if l.startswith('ROUNDS ')][-1]
  return json.loads(line[len('ROUNDS '):])


def table(results: dict) -> list[str]:
  import numpy as np
  lines = [f'| version | round | total s | ' + ' | '.join(STAGES) + ' | success |',
           '|---|---|---|' + '---|' * len(STAGES) + '---|']
  for version, repeats in results.items():
    rounds = sorted({r['round'] for rows in repeats for r in rows})
    for round_index in rounds + ['mean']:
      rows = [r for rows in repeats for r in rows
              if round_index == 'mean' or r['round'] == round_index]
      cell = lambda key: f'{np.mean([r.get(key, 0.0) for r in rows]):.1f}'
      success = ('-' if round_index == 'mean'
                 else f'{np.mean([r["success"] for r in rows]):.2f}')
      lines.append(f'| {version} | {round_index} | {cell("total")} | '
                   + ' | '.join(cell(s) for s in STAGES) + f' | {success} |')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--baseline', default='0082f93',
                      help='git ref of the "before" version (default: the last commit before '
                           'episodes ran side by side and the learner stayed up across rounds)')
  parser.add_argument('--rounds', type=int, default=2, help='measured rounds after round 0')
  parser.add_argument('--repeats', type=int, default=1)
  parser.add_argument('--threads', type=int, default=0, help='TensorFlow threads (0: all)')
  parser.add_argument('--max_load', type=float, default=0.5)
  parser.add_argument('--force', action='store_true')
  parser.add_argument('--out', default=os.path.join(REPO, 'benchmarks', 'results',
                                                    'loop_round_benchmark.txt'))
  args = parser.parse_args()
  from sim import experts as experts_lib
  from sim import loop
  expert_dir = os.path.join(REPO, '..', 'shared', 'experts', 'adroit')
  reference_dir = os.path.join(loop.RUNS_ROOT, 'reference')
  spec_kwargs = dict(task='pen', method='rlif_value', seed=0,
                     expert_noise=experts_lib.calibrated_noise('pen', '40'), num_demos=50,
                     rounds=args.rounds, episodes_per_round=20, initial_updates=2000,
                     updates_per_round=1000, eval_episodes=20)
  base_dir = os.path.join(loop.RUNS_ROOT, 'loop_round_benchmark', 'base-pen40-s0')
  prepare_base(spec_kwargs, base_dir, expert_dir, reference_dir)

  baseline_tree = os.path.join(tempfile.gettempdir(), f'rlif_baseline_{args.baseline}')
  if not os.path.exists(baseline_tree):
    subprocess.run(['git', 'worktree', 'add', '--detach', baseline_tree, args.baseline],
                   cwd=REPO, check=True, capture_output=True)
  from benchmarks import rlif_benchmark
  env = dict(os.environ, **rlif_benchmark.thread_environment(args.threads))
  load = load_average()
  if load > args.max_load and not args.force:
    sys.exit(f'load average {load:.2f} > {args.max_load}: the machine is busy; wait or --force')
  results = {'before': [], 'after': []}
  started = time.strftime('%Y-%m-%d %H:%M')
  for _ in range(args.repeats):
    for version, tree in (('before', baseline_tree), ('after', REPO)):
      results[version].append(run_version(tree, spec_kwargs, base_dir, expert_dir,
                                          reference_dir, env))
      print(version, json.dumps(results[version][-1]), flush=True)
  import numpy as np
  mean = {v: np.mean([r['total'] for rows in reps for r in rows]) for v, reps in results.items()}
  lines = [f'Loop-round benchmark, {started}, load average at start {load:.2f}, '
           f'{os.cpu_count()} cores, TF threads {args.threads or "all"}.',
           f'pen rlif_value ~40% expert seed 0: rounds 1..{args.rounds} from the same round 0, '
           f'20 episodes + 1,000 train calls + 20 evaluation episodes per round; '
           f'{args.repeats} repeat(s), versions alternating.',
           f'before = git {args.baseline}; after = the working tree.', ''] + table(results) + [
           '', f'mean round: before {mean["before"]:.1f} s, after {mean["after"]:.1f} s, '
           f'after/before {mean["after"] / mean["before"]:.2f}']
  text = '\n'.join(lines) + '\n'
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main()
