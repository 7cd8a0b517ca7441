r"""A finished grid's policies evaluated again on more episodes, so that 5-point differences show.

  python benchmarks/reevaluate.py --grid pen_mae [--episodes 100] [--methods rlif_value,...]
      [--threads 1]

Grids run before 2026-12-07 evaluated each round's policy on 20 episodes (`rlif_benchmark.py
--eval_episodes`, now 100): one seed's success then has a standard error of ~10 points, as large
as the differences between methods. A policy costs ~3 s per 20 pen episodes against ~90 s of
RLIF training per round, so this reloads the exported policies of every finished run of ROOT/<grid> (round 0's shared initial policy and
the last three rounds) and runs each alone on `--episodes` episodes from the same initial states
(`sim.collector.episode_seed`: a 20-episode grid's are the first 20 of them). Each run keeps its
results in <run>/eval_<episodes>.jsonl (resumable: a policy evaluated once is not run again).
Writes benchmarks/results/rlif_<grid>/eval<episodes>.md (the table, `report`) and
eval<episodes>.jsonl (every evaluation, for the record).
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

LAST = 3  # the last rounds the report averages, as the benchmark's "last 3"


def rounds_to_evaluate(final_round: int) -> list[int]:
  """Round 0 (the shared initial policy) and the last `LAST` rounds."""
  return [0] + list(range(max(final_round - LAST + 1, 1), final_round + 1))


def policy_dir(run: str, round_index: int) -> str:
  """Where sim.loop exported a run's policy of `round_index`."""
  return os.path.join(run, 'initial' if round_index == 0 else 'learner', 'policies',
                      f'round_{round_index}')


def policy_fingerprint(directory: str) -> str:
  """A digest of an exported policy's weights: the runs of one level and seed share their
  initial policy (the same seed trains the same BC policy in each run's folder), evaluated
  once."""
  digest = hashlib.sha256()
  for path in sorted(glob.glob(os.path.join(directory, 'variables', 'variables.data-*'))):
    with open(path, 'rb') as f:
      digest.update(f.read())
  return digest.hexdigest()


def _mean_std(values) -> str:
  values = np.asarray(values, dtype=float)
  return (f'{values.mean():.0f} +- {values.std():.0f} '
          f'({", ".join(f"{v:.0f}" for v in values)})')


def report(rows: list[dict], episodes: int, baseline: str = 'rlif_value') -> str:
  """rows: {'level', 'method', 'seed', 'round', 'final_round', 'success_rate'} -> markdown: per
  level and method the initial, final and last-3 success %, mean +- std over seeds; then each
  method against `baseline`, paired by seed (only seeds both have), with the difference of the
  pair's initial policies: the runs of one seed share their initial policy where they trained it
  on one machine, but a BC policy retrained on another machine is not the same one (pen ~40%
  seed 0: 67% and 76% on 100 episodes), and such a pair compares two starts as well."""
  runs: dict = {}
  for row in rows:
    runs.setdefault((row['level'], row['method'], row['seed']), {})[row['round']] = row
  finals, lasts, initials, starts = {}, {}, {}, {}
  for (level, method, seed), by_round in runs.items():
    final_round = max(r['final_round'] for r in by_round.values())
    wanted = rounds_to_evaluate(final_round)
    if any(r not in by_round for r in wanted):
      continue  # not every policy evaluated yet
    finals[level, method, seed] = 100 * by_round[final_round]['success_rate']
    lasts[level, method, seed] = 100 * np.mean([by_round[r]['success_rate'] for r in wanted[1:]])
    initials[level, method, seed] = 100 * by_round[0]['success_rate']
    starts[level, method, seed] = (by_round[0]['success_rate'], by_round[0].get('mean_return'))
  levels = sorted({k[0] for k in finals}, key=lambda l: -int(l))
  methods = sorted({k[1] for k in finals}, key=lambda m: (m != baseline, m))
  lines = [f'# Success on {episodes} evaluation episodes per policy', '',
           f'Each run\'s exported policies (round 0, its initial BC policy, and the last '
           f'{LAST} rounds) reloaded and run alone on {episodes} episodes from fixed initial '
           'states (the benchmark\'s 20 are the first 20), so one seed\'s number has a standard '
           f'error of about {100 * np.sqrt(0.25 / episodes):.0f} points at most. Final = the '
           f'last round; last {LAST} = each seed\'s mean over its last {LAST} rounds; mean +- std '
           'over seeds (each seed in brackets). `python benchmarks/reevaluate.py` (its '
           'docstring).', '',
           '| expert level | method | seeds | initial (BC) | final | last 3 |',
           '|---|---|---|---|---|---|']
  means: dict = {}
  for level in levels:
    for method in methods:
      seeds = sorted(s for l, m, s in finals if (l, m) == (level, method))
      if not seeds:
        continue
      final = [finals[level, method, s] for s in seeds]
      last = [lasts[level, method, s] for s in seeds]
      means.setdefault(method, []).append((np.mean(final), np.mean(last), len(seeds)))
      lines.append(f'| ~{level}% | {method} | {len(seeds)} | '
                   f'{np.mean([initials[level, method, s] for s in seeds]):.0f} | '
                   f'{_mean_std(final)} | '
                   f'{_mean_std(last)} |')
  lines += ['', 'Mean over levels (only methods with every level):', '',
            '| method | final | last 3 |', '|---|---|---|']
  for method in methods:
    if len(means[method]) == len(levels):
      lines.append(f'| {method} | {np.mean([m[0] for m in means[method]]):.1f} | '
                   f'{np.mean([m[1] for m in means[method]]):.1f} |')
  lines += ['', f'Each method minus {baseline}, paired by seed (final; last {LAST}; and the '
            'initial policies: a nonzero difference there means the pair did not start from the '
            'same policy, a BC policy retrained on another machine). Where '
            f'`{baseline}+rerun` (the default collected again) starts from the method\'s initial '
            'policy and the shipped run does not, the seed is paired with the rerun '
            '(`rlif_benchmark.pair_partner`).', '',
            '| expert level | method | seeds | final difference | ahead | last-3 difference '
            '| ahead | initial difference | partner |', '|---|---|---|---|---|---|---|---|---|']
  from benchmarks import rlif_benchmark
  for level in levels:
    for method in methods:
      if method == baseline:
        continue
      partner = {s: rlif_benchmark.pair_partner(starts, level, method, baseline, s)
                 for l, m, s in finals if (l, m) == (level, method)}
      seeds = sorted(s for s, p in partner.items() if (level, p, s) in finals)
      if not seeds:
        continue
      def paired(table):
        return np.array([table[level, method, s] - table[level, partner[s], s] for s in seeds])

      cells = []
      for diff in (paired(finals), paired(lasts)):
        cells += [f'{diff.mean():+.0f} +- {diff.std():.0f}',
                  f'{int((diff > 0).sum())} of {len(seeds)}']
      start = paired(initials)
      cells += [f'{start.mean():+.0f} ({", ".join(f"{d:+.0f}" for d in start)})',
                ', '.join('rerun' if partner[s] != baseline else 'shipped' for s in seeds)]
      lines.append(f'| ~{level}% | {method} | {len(seeds)} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def restore_evaluations(root: str, grid: str, out_dir: str, episodes: int) -> list[str]:
  """Writes each run's <run>/eval_<episodes>.jsonl back from the report's committed
  eval<episodes>.jsonl where the run's folder has none (a new machine starts with no runs; with
  `rlif_benchmark.restore_records` its records come back, not its policies), so a report
  rewritten there keeps the rows evaluated before. Returns the runs restored."""
  from benchmarks import rlif_benchmark
  path = os.path.join(out_dir, f'eval{episodes}.jsonl')
  if not os.path.exists(path):
    return []
  runs: dict = {}
  with open(path) as f:
    for row in map(json.loads, filter(str.strip, f)):
      runs.setdefault((row['level'], row['method'], row['seed']), []).append(row)
  restored = []
  for (level, method, seed), rows in sorted(runs.items()):
    run = rlif_benchmark.run_dir(root, grid, level, method, seed)
    cache = os.path.join(run, f'eval_{episodes}.jsonl')
    if not os.path.isdir(run) or os.path.exists(cache):
      continue
    with open(cache, 'w') as f:
      for row in sorted(rows, key=lambda r: r['round']):
        f.write(json.dumps({k: row[k] for k in ('round', 'success_rate', 'mean_return',
                                                 'episodes')}) + '\n')
    restored.append(os.path.relpath(run, root))
  return restored


def evaluate_run(run: str, records: list[dict], episodes: int, shared: dict,
                 log=functools.partial(print, flush=True), cached_only: bool = False
                 ) -> list[dict]:
  """The run's policies of `rounds_to_evaluate` on `episodes` episodes each; `records` are its
  round records (results.jsonl). Cached in <run>/eval_<episodes>.jsonl, and in `shared` by
  (task, fingerprint, seed) for identical policies of other runs. [] where a policy is not
  evaluated yet and `cached_only` is set (a row --methods leaves out), or where its exported
  policy is not on this machine (a run restored from the committed records)."""
  from sim import loop
  from sim import collector
  from sim import tasks as tasks_lib
  final_round = max(r['round'] for r in records)
  first = records[0]
  task = tasks_lib.get_task(first['task'])
  cache = os.path.join(run, f'eval_{episodes}.jsonl')
  done = {}
  if os.path.exists(cache):
    with open(cache) as f:
      done = {row['round']: row for row in map(json.loads, f) if row}
  missing = [r for r in rounds_to_evaluate(final_round) if r not in done]
  if missing and cached_only:
    return []
  if not all(os.path.isdir(policy_dir(run, r)) for r in missing):
    log(f'{run}: no exported policies here (records restored from the report), not evaluated')
    return []
  rows = []
  for round_index in rounds_to_evaluate(final_round):
    if round_index not in done:
      directory = policy_dir(run, round_index)
      key = (task.name, policy_fingerprint(directory), first['seed'])
      if key not in shared:
        shared[key] = loop.evaluate(task, collector.load_saved_policy(directory), episodes,
                                    first['seed'])
      result = shared[key]
      done[round_index] = {'round': round_index, 'success_rate': result['success_rate'],
                           'mean_return': result['mean_return'], 'episodes': episodes}
      with open(cache, 'a') as f:
        f.write(json.dumps(done[round_index]) + '\n')
      log(f'{run} round {round_index}: {100 * result["success_rate"]:.0f}%')
    rows.append(dict(done[round_index], seed=first['seed'], final_round=final_round))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--grid', required=True, help='ROOT/<grid>, e.g. pen_mae')
  parser.add_argument('--episodes', type=int, default=100)
  parser.add_argument('--methods', default='',
                      help='comma-separated benchmark rows (method[+variant]) to evaluate; '
                           'default: all. The report keeps the others\' earlier evaluations')
  parser.add_argument('--rounds', type=int, default=5,
                      help='only runs that finished this many rounds (the grid\'s budget)')
  parser.add_argument('--root', default=None, help='grids\' runs (default ~/rlif_runs/benchmark)')
  parser.add_argument('--threads', type=int, default=0, help='TensorFlow threads (0: all cores)')
  args = parser.parse_args()
  from benchmarks import rlif_benchmark
  os.environ.update(rlif_benchmark.thread_environment(args.threads))  # before any TF import
  from sim import loop
  root = args.root or os.path.join(loop.RUNS_ROOT, 'benchmark')
  wanted = set(filter(None, args.methods.split(',')))
  out_dir = os.path.join(REPO, 'benchmarks', 'results', f'rlif_{args.grid}')
  # A new machine has none of the earlier runs: their records and evaluations come back from
  # the committed report, so the rewritten one keeps them.
  rlif_benchmark.restore_records(root, args.grid, out_dir)
  restore_evaluations(root, args.grid, out_dir, args.episodes)
  runs: dict = {}
  for record in rlif_benchmark.load_rows(root, args.grid):
    runs.setdefault((record['level'], record['method'], record['seed']), []).append(record)
  rows, shared = [], {}
  for (level, method, seed), records in sorted(runs.items()):
    if max(r['round'] for r in records) != args.rounds:
      continue
    run = rlif_benchmark.run_dir(root, args.grid, level, method, seed)
    # a row --methods leaves out keeps the evaluations it has, so the rewritten report loses none
    rows += [dict(row, level=level, method=method)
             for row in evaluate_run(run, records, args.episodes, shared,
                                     cached_only=bool(wanted) and method not in wanted)]
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f'eval{args.episodes}.jsonl'), 'w') as f:
    for row in rows:
      f.write(json.dumps(row) + '\n')
  text = report(rows, args.episodes)
  with open(os.path.join(out_dir, f'eval{args.episodes}.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main()
