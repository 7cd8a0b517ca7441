r"""How often the value model's rule flags a policy's steps, judged by the acting expert's own
proposal or by the undegraded expert (`LoopSpec.operator_standard` 'own' / 'clean').

  python benchmarks/operator_standard.py --grid pen_distorted \
      --runs level40/rlif_value-s0,level10/hg_dagger-s0 [--rounds 1,3,5] \
      [--alphas 0.97,0.99,0.995,0.998]

Reads finished loop runs of a benchmark grid (`~/rlif_runs/benchmark/<grid>/<run>`, their raw
rounds and results.jsonl): at every step the policy controlled in the given rounds, Q_ref (the
task's cached reference agent) rates the policy's logged proposal, the acting expert's proposal
(the run's degraded expert, recomputed from the state) and the undegraded expert's action. Per
alpha, the share of those steps where each standard is clearly better
(`sim.intervention.expert_clearly_better`), and the quantiles of Q(standard) - Q(policy). The
states are the ones the runs visited; no simulation. Writes
benchmarks/results/operator_standard/<grid>.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main(argv=None) -> None:
  from benchmarks import grid_runs
  from sim import experts, intervention
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--grid', default='pen_distorted')
  parser.add_argument('--runs', default='level40/rlif_value-s0,level10/hg_dagger-s0')
  parser.add_argument('--rounds', default='1,3,5')
  parser.add_argument('--alphas', default='0.97,0.99,0.995,0.998')
  grid_runs.add_location_arguments(parser, 'operator_standard')
  args = parser.parse_args(argv)
  alphas = [float(a) for a in args.alphas.split(',')]
  lines = [f'# Value-model flags by standard: {args.grid}', '',
           f'`python benchmarks/operator_standard.py --grid {args.grid} --runs {args.runs} '
           f'--rounds {args.rounds} --alphas {args.alphas}`', '',
           'Share of the policy-controlled steps of each round where the standard\'s action is '
           'rated clearly better than the policy\'s proposal (Q_ref, the signed margin), per '
           'alpha; own = the acting (degraded) expert\'s proposal, as in the paper; clean = the '
           'undegraded expert\'s action. dQ = Q(standard) - Q(policy), 10/50/90th percentiles; '
           'Q = the mean of Q(standard).', '',
           '| run | round | steps | standard | ' + ' | '.join(f'alpha {a}' for a in alphas)
           + ' | dQ 10/50/90 | Q |',
           '|---|---|---|---|' + '---|' * len(alphas) + '---|---|']
  grid = grid_runs.GridReader(args.root, args.grid, args.expert_dir)
  for run in args.runs.split(','):
    opened = grid.open(run)
    base, q_ref = opened.expert, opened.q_ref
    acting = experts.DistortedExpert(base, opened.first['expert_distortion'])
    for r in (int(x) for x in args.rounds.split(',')):
      observations, proposals, _ = grid_runs.policy_steps(opened.directory, r)
      q_policy = q_ref.q(observations, proposals)
      standards = {'own': experts.executed_actions(acting, observations),
                   'clean': experts.executed_actions(base, observations)}
      for name, actions in standards.items():
        q_standard = q_ref.q(observations, actions)
        shares = [float(np.mean(intervention.expert_clearly_better(q_standard, q_policy, a)))
                  for a in alphas]
        dq = np.percentile(q_standard - q_policy, [10, 50, 90])
        lines.append(f'| {run} | {r} | {len(observations)} | {name} | '
                     + ' | '.join(f'{100 * s:.1f}%' for s in shares)
                     + f' | {dq[0]:.2f} / {dq[1]:.2f} / {dq[2]:.2f} | {q_standard.mean():.1f} |')
        print(lines[-1], flush=True)
  grid_runs.write_lines(args.out, args.grid, lines)


if __name__ == '__main__':
  main()
