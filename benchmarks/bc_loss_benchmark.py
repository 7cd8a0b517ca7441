r"""Which loss the supervised learners fit: squared or absolute error on the deployed action, or
likelihood.

  python benchmarks/bc_loss_benchmark.py [--task pen] [--levels 90,40,10] [--seeds 0,1,2]
      [--updates 2000] [--eval_episodes 50] [--losses mse,mae,likelihood,mae+avg0.99]

For each expert level and seed, the RLIF benchmark's round 0 (`sim.loop`, method `bc`, no
intervention rounds): 50 demonstrations of the calibrated suboptimal expert, the same episodes
the benchmark's runs of that seed start from. On that dataset the `bc` learner
(configs/bc.toml) is trained once per loss (`--set loss=...`, everything else the file's) for
`--updates` updates with the same seed, and each exported policy runs alone on the same
`--eval_episodes` episodes. What it measures is the policy every method of the RLIF benchmark
starts from (BC, HG-DAgger and DAgger keep training with the same loss; RLIF's actor
warm-starts from it). A loss with `+avgD` deploys the average of the actor's weights with decay D
(`policy_average_decay`, trainer/policy_average.py): the same seed trains the same actor, so it is
paired with its loss alone update for update. Writes benchmarks/results/bc_loss/<task>.md
(`report_name`: other budgets and loss lists have their own); the runs stay under
ROOT/bc_loss/ (resumable: a finished policy is evaluated again, not retrained).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_UPDATES = 2000  # the RLIF benchmark's initial BC policy


def budget_suffix(updates: int) -> str:
  """'' for the benchmark's budget, '-u<updates>' otherwise: names that keep the policies and
  reports of other budgets apart."""
  return '' if updates == DEFAULT_UPDATES else f'-u{updates}'


DEFAULT_LOSSES = 'mse,mae,likelihood'


def report_name(task: str, updates: int, losses: str) -> str:
  """pen.md for the default losses at the benchmark's budget; other budgets and loss lists get
  their own files (pen-u6000.md, pen-mae,mae+avg0.99.md)."""
  return (f'{task}{budget_suffix(updates)}'
          + ('' if losses == DEFAULT_LOSSES else f'-{losses}') + '.md')


def fit_settings(fit: str) -> dict:
  """'mae' -> {'loss': 'mae'}; 'mae+avg0.99' -> also {'policy_average_decay': 0.99}."""
  loss, *extras = fit.split('+')
  settings = {'loss': loss}
  for extra in extras:
    if not extra.startswith('avg'):
      raise ValueError(f'unknown suffix {extra!r} in {fit!r} (known: +avg<decay>)')
    settings['policy_average_decay'] = float(extra[len('avg'):])
  return settings


def train_and_evaluate(data_dir: str, dataset: str, run_dir: str, loss: str, updates: int,
                       seed: int, task, eval_episodes: int) -> dict:
  """The `bc` learner with `loss` (`fit_settings`) on the dataset's round 0; its policy's success
  alone."""
  from sim import collector
  from sim import loop
  from trainer import learners
  from trainer import train_loop
  policy_dir = os.path.join(run_dir, 'policies', 'round_0')
  start = time.perf_counter()
  if not os.path.exists(policy_dir):
    config = train_loop.LoopConfig(
        learner='bc', batch_size=256, num_steps=updates, steps_per_round=updates,
        checkpoint_every=updates, summary_every=max(updates // 10, 1), seed=seed,
        progress=False)
    settings = learners.load_settings('bc', overrides=fit_settings(loss))
    train_loop.TrainLoop(config, settings, data_dir, dataset, run_dir, log=lambda m: None).run()
  seconds = time.perf_counter() - start
  result = loop.evaluate(task, collector.load_saved_policy(policy_dir), eval_episodes, seed)
  return {**result, 'train_seconds': round(seconds, 1)}


def report(task_name: str, results: dict, updates: int, eval_episodes: int) -> str:
  """results: {(level, seed): {loss: evaluate() dict}} -> markdown. The first loss of each
  result is the baseline every other loss is paired with, seed by seed."""
  levels = sorted({level for level, _ in results}, key=lambda l: -int(l))
  losses = list(next(iter(results.values())))
  base, others = losses[0], losses[1:]
  lines = [f'# Supervised loss: {", ".join(losses)} ({task_name})', '',
           f'The `bc` learner (configs/bc.toml, `loss` set per column) for {updates} updates on '
           'the RLIF benchmark\'s round-0 demonstrations (50 episodes of the calibrated '
           f'suboptimal expert, per seed), then {eval_episodes} episodes of its deployed policy '
           'alone (the same episodes for every loss). Success %, mean +- std over seeds (each '
           'seed in brackets); each difference is paired by seed. '
           '`python benchmarks/bc_loss_benchmark.py` (its docstring).', '',
           '| expert level | ' + ' | '.join(losses) + ' | '
           + ' | '.join(f'{other} - {base} | {other} ahead' for other in others) + ' |',
           '|---|' + '---|' * (len(losses) + 2 * len(others))]
  means = {loss: [] for loss in losses}
  for level in levels:
    seeds = sorted(seed for l, seed in results if l == level)
    cells, values = [], {}
    for loss in losses:
      values[loss] = np.array([100 * results[level, s][loss]['success_rate'] for s in seeds])
      means[loss].append(values[loss].mean())
      cells.append(f'{values[loss].mean():.0f} +- {values[loss].std():.0f} '
                   f'({", ".join(f"{v:.0f}" for v in values[loss])})')
    for other in others:
      diff = values[other] - values[base]
      cells += [f'{diff.mean():+.0f} +- {diff.std():.0f}',
                f'{int((diff > 0).sum())} of {len(seeds)}']
    lines.append(f'| ~{level}% | ' + ' | '.join(cells) + ' |')
  lines.append('| mean | ' + ' | '.join(f'{np.mean(means[loss]):.0f}' for loss in losses)
               + ' |' + ' |' * (2 * len(others)))
  seconds = [r[loss]['train_seconds'] for r in results.values() for loss in losses
             if r[loss]['train_seconds'] > 1]
  if seconds:
    lines += ['', f'Training time per policy: {min(seconds):.0f}-{max(seconds):.0f} s.']
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', default='pen')
  parser.add_argument('--levels', default='90,40,10')
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--updates', type=int, default=DEFAULT_UPDATES)
  parser.add_argument('--eval_episodes', type=int, default=50)
  parser.add_argument('--losses', default=DEFAULT_LOSSES,
                      help='comma-separated SupervisedAgent losses, each optionally with '
                           '+avg<decay> (the policy average); the first is the baseline the '
                           'others are paired with')
  parser.add_argument('--root', default=None, help='run folders (default: ~/rlif_runs)')
  parser.add_argument('--expert_dir', default=os.path.join(REPO, '..', 'shared', 'experts',
                                                           'adroit'))
  args = parser.parse_args()
  losses = args.losses.split(',')
  for loss in losses:
    fit_settings(loss)  # refuse an unknown suffix before any run
  suffix = budget_suffix(args.updates)
  from sim import experts as experts_lib
  from sim import loop
  from sim import tasks as tasks_lib
  task = tasks_lib.get_task(args.task)
  root = os.path.join(args.root or loop.RUNS_ROOT, 'bc_loss', task.name)
  results = {}
  for level in args.levels.split(','):
    for seed in (int(s) for s in args.seeds.split(',')):
      run_dir = os.path.join(root, f'level{level}-s{seed}')
      spec = loop.LoopSpec(task=task.name, method='bc', seed=seed, rounds=0,
                           expert_noise=experts_lib.calibrated_noise(task.name, level),
                           num_demos=50, initial_updates=1, eval_episodes=1)
      the_loop = loop.RlifLoop(spec, run_dir, args.expert_dir,
                               os.path.join(loop.RUNS_ROOT, 'reference'))
      the_loop.run()  # round 0: the demonstrations as the benchmark collects them (its own
      # initial policy, 1 update, is not what is measured here)
      results[level, seed] = {
          loss: train_and_evaluate(the_loop.data_dir, the_loop.dataset,
                                   os.path.join(run_dir, f'loss_{loss}{suffix}'), loss,
                                   args.updates, seed, task, args.eval_episodes)
          for loss in losses}
      print(f'~{level}% seed {seed}: ' + ', '.join(
          f'{loss} {100 * r["success_rate"]:.0f}%' for loss, r in results[level, seed].items()),
          flush=True)
  out = os.path.join(REPO, 'benchmarks', 'results', 'bc_loss',
                     report_name(task.name, args.updates, args.losses))
  os.makedirs(os.path.dirname(out), exist_ok=True)
  text = report(task.name, results, args.updates, args.eval_episodes)
  with open(out, 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main()
