"""How well can pure imitation of the benchmark's noisy experts do? Their success, side by side.

The collector logs the action it executed, clipped to the box [-1, 1]. A learner fitting a
`NoisyExpert`'s logged actions by squared error therefore converges, with unlimited data, to
`NoiseAveragedExpert`: E[clip(a + noise)], not the undegraded action a. This measures, per task
and calibrated level, on the same episode starts: the noisy expert itself, that limit of
imitating it, and the undegraded expert; beside them the final success of the grid's methods
(benchmarks/results/rlif_<task>/runs.jsonl, runs that spent the whole budget).

    python benchmarks/imitation_ceiling.py --tasks pen,door,hammer,relocate --episodes 100

writes benchmarks/results/imitation_ceiling/{results.md, rows.jsonl}; `--only_table` rewrites the
table from rows.jsonl as the grids fill in.
"""

import argparse
import collections
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from sim import experts as experts_lib  # noqa: E402

LEVELS = ('90', '40', '10')
METHODS = ('rlif_value', 'hg_dagger', 'dagger', 'bc')
CHECK_SEED = 1000  # the check states of sim/EXPERTS.md: collector.episode_seed(1000, 0, i)


def grid_finals(runs_jsonl: str, budget: int) -> dict:
  """(level, method) -> final success % of each seed whose run reached `budget` env steps,
  methods as they ship (no variant)."""
  last = {}
  if not os.path.exists(runs_jsonl):
    return {}
  with open(runs_jsonl) as f:
    for line in f:
      row = json.loads(line)
      key = (row['level'], row['method'], row['seed'])
      if '+' not in row['method'] and (key not in last or row['round'] > last[key]['round']):
        last[key] = row
  finals = collections.defaultdict(list)
  for (level, method, _), row in sorted(last.items()):
    if row['env_steps'] >= budget:
      finals[(level, method)].append(100 * row['eval']['success_rate'])
  return dict(finals)


def measure(task: str, expert_dir: str, episodes: int) -> list[dict]:
  base = experts_lib.MlpExpert.load(os.path.join(expert_dir, f'{task}_dapg_expert.npz'), task)
  clean = 100 * experts_lib.success_rate(task, base, episodes, CHECK_SEED)
  rows = []
  for level in LEVELS:
    sigma = experts_lib.calibrated_noise(task, level)
    start = time.perf_counter()
    rows.append({
        'task': task, 'level': level, 'noise': sigma, 'episodes': episodes, 'clean': clean,
        'noisy': 100 * experts_lib.success_rate(
            task, experts_lib.NoisyExpert(base, sigma), episodes, CHECK_SEED),
        'averaged': 100 * experts_lib.success_rate(
            task, experts_lib.NoiseAveragedExpert(base, sigma), episodes, CHECK_SEED),
        'seconds': round(time.perf_counter() - start, 1)})
    print(json.dumps(rows[-1]), flush=True)
  return rows


def _cell(values) -> str:
  if not values:
    return '-'
  return f'{np.mean(values):.0f} ({len(values)})'


def table(rows: list[dict], results_dir: str, budget: int) -> list[str]:
  lines = ['| task | expert | noise | undegraded expert | noisy expert | limit of imitating it '
           '| ' + ' | '.join(METHODS) + ' |',
           '|---' * (6 + len(METHODS)) + '|']
  for row in rows:
    finals = grid_finals(os.path.join(results_dir, f'rlif_{row["task"]}', 'runs.jsonl'), budget)
    lines.append(
        f'| {row["task"]} | ~{row["level"]}% | {row["noise"]:g} | {row["clean"]:.0f} '
        f'| {row["noisy"]:.0f} | **{row["averaged"]:.0f}** | '
        + ' | '.join(_cell(finals.get((row['level'], m), [])) for m in METHODS) + ' |')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--tasks', default='pen,door,hammer,relocate')
  parser.add_argument('--episodes', type=int, default=100)
  parser.add_argument('--budget', type=int, default=20_000,
                      help='env steps a grid run must have spent to count in the table')
  parser.add_argument('--expert_dir',
                      default=os.path.join(REPO, '..', 'shared', 'experts', 'adroit'))
  parser.add_argument('--results', default=os.path.join(REPO, 'benchmarks', 'results'))
  parser.add_argument('--only_table', action='store_true',
                      help='measure nothing: the table again from the committed rows.jsonl and '
                           'the grids\' current runs.jsonl')
  args = parser.parse_args()
  out_dir = os.path.join(args.results, 'imitation_ceiling')
  os.makedirs(out_dir, exist_ok=True)
  if args.only_table:
    with open(os.path.join(out_dir, 'rows.jsonl')) as f:
      rows = [json.loads(line) for line in f]
    args.tasks, args.episodes = ','.join(dict.fromkeys(r['task'] for r in rows)), rows[0]['episodes']
  else:
    rows = [r for task in args.tasks.split(',') for r in measure(task, args.expert_dir,
                                                                   args.episodes)]
  text = '\n'.join([
      '# The limit of imitating the noisy experts', '',
      f'Success % on {args.episodes} episodes per cell, the same starts for every column '
      f'(collector.episode_seed({CHECK_SEED}, 0, i)). Limit of imitating it = '
      '`sim.experts.NoiseAveragedExpert`: the mean of the clipped actions the collector logs '
      'from the noisy expert, what a squared-error learner converges to with unlimited data. '
      'The method columns: final success of the grid\'s runs that spent '
      f'{args.budget} env steps (benchmarks/results/rlif_<task>/runs.jsonl; mean, seed count; '
      '20 evaluation episodes per seed).', '',
      *table(rows, args.results, args.budget), '',
      f'Command: `python benchmarks/imitation_ceiling.py --tasks {args.tasks} '
      f'--episodes {args.episodes}`.', ''])
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(out_dir, 'rows.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  print(text)


if __name__ == '__main__':
  main()
