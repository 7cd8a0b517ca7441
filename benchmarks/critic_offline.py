r"""A screen of critic-learning settings in minutes instead of closed-loop runs: retrains the RLIF
learner on one finished run's rounds, offline, under each variant, and asks critic_ranking's
questions of every result.

  python benchmarks/critic_offline.py --grid pen \
      --run 'level40/rlif_value+explore0.3-s0' --variants 'default,prior0.25,bc_demo+refused' \
      [--updates 2000] [--round 5]

Each variant (`benchmarks/rlif_benchmark.py` VARIANTS, '+'-joined; `default` = configs/rlif.toml
as it ships) trains a fresh learner from the run's shared initial BC actor on all the run's
rounds at once (round 0 as prior data, the rest online) for `--updates` train calls, then is
measured on the policy's steps of raw round `--round` against Q_ref: the spread of its dQ, its
rank correlation and agreement with Q_ref, and the actor's move (`critic_ranking.measure`). The
data are the same for every variant, so the rows differ by the learner alone; what the data would
have become under each learner (the closed loop) is not in it. Writes
benchmarks/results/critic_offline/<grid>.md (one table per command, appended).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def retrain(run, label: str, updates: int, out_dir: str, log=print):
  """A learner trained offline on `run`'s rounds under row `label`; returns (its agent, its
  behaviour-term weight)."""
  from benchmarks import grid_runs
  from sim import loop
  from trainer import train_loop
  learner, settings, prior_fraction = grid_runs.row_learner(label, run.task.name)
  data_dir, dataset = os.path.join(run.directory, 'data'), f'rlif_{run.task.name}'
  config = train_loop.LoopConfig(learner=learner, prior_fraction=prior_fraction,
                                 num_steps=updates, checkpoint_every=updates,
                                 summary_every=updates, seed=run.first['seed'], progress=False)
  trainer = train_loop.TrainLoop(config, settings, data_dir, dataset, out_dir, log=log)
  loop._copy_actor(os.path.join(run.directory, loop.INITIAL, 'checkpoints'), trainer.agent,
                   data_dir, dataset, run.first['seed'])
  trainer.actor_initialised = True
  trainer.run()
  return trainer.agent, float(settings.get('bc_weight', 0.0))


def main(argv=None) -> None:
  from benchmarks import critic_ranking, grid_runs
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--grid', default='pen')
  parser.add_argument('--run', default='level40/rlif_value+explore0.3-s0')
  parser.add_argument('--variants', default='default,prior0.25')
  parser.add_argument('--updates', type=int, default=2000)
  parser.add_argument('--round', type=int, default=5, help='the raw round whose states to use')
  grid_runs.add_location_arguments(parser, 'critic_offline')
  args = parser.parse_args(argv)
  run = grid_runs.GridReader(args.root, args.grid, args.expert_dir).open(args.run)
  observations, proposals, onsets = grid_runs.policy_steps(run.directory, args.round)
  lines = ['', f'`python benchmarks/critic_offline.py --grid {args.grid} --run {args.run} '
           f'--variants {args.variants} --updates {args.updates} --round {args.round}` '
           f'({time.strftime("%Y-%m-%d %H:%M")})', '',
           '| variant | minutes | dQ_ref | dQ learned | rank | agree | onsets exp better: ref / '
           'learned | gain by Q_ref | gain by learner | learner abs Q | Q / return | BC pull |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|']
  for variant in args.variants.split(','):
    label = 'rlif_value' + ('' if variant == 'default' else '+' + variant)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
      agent, bc_weight = retrain(run, label, args.updates, scratch, log=lambda m: None)
      returns = grid_runs.policy_step_returns(run.directory, args.round, agent.gamma)
      row = critic_ranking.measure(agent, bc_weight, run.q_ref, run.expert, observations,
                                   proposals, onsets, returns)
    lines.append(f'| {variant} | {(time.perf_counter() - start) / 60:.1f} | '
                 + critic_ranking.row_cells(row) + ' |')
    print(lines[-1], flush=True)
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, f'{args.grid}.md')
  header = [] if os.path.exists(path) else [
      f'# Critic-learning settings retrained offline on one run: {args.grid}', '',
      'Each table: one finished run\'s rounds, a fresh learner per variant from the run\'s '
      'initial BC actor, measured as in benchmarks/results/critic_ranking (columns there).']
  with open(path, 'a') as f:
    f.write('\n'.join(header + lines) + '\n')


if __name__ == '__main__':
  main()
