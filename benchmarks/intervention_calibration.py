r"""How often the value-based simulated expert takes over, per task and margin alpha.

  python benchmarks/intervention_calibration.py --task door [--level 40] [--episodes 10]
      [--alphas 0.99,0.97,0.95,0.9,0.8]

The policies are the loop's initial BC policy at the given expert level (what round 1 deploys)
and, for the trend as a policy improves, the task's own expert at its calibrated ~10/40/90%
noise and noise-free. Each runs alone for `--episodes` episodes (the expert labels every step, as
in DAgger's rounds) and Q_ref rates the expert's and the policy's action at every visited state.
From those pairs, per alpha, the share p of decisions where the expert's action is clearly better
(the signed rule, `sim.intervention.expert_clearly_better`, and the paper's literal
alpha * Q_exp > Q_pi), and the share of steps the expert would control with the paper's beta and
the hold: a decision intervenes with q = beta * p + (1 - beta) * (1 - p) and holds k steps, so
f = q k / (q k + 1 - q) (`expert_control_fraction`). The states are the policy's own, so f is
the first round's rate before takeovers move the state distribution. Writes
benchmarks/results/intervention_calibration/<task>.md, ending with a measured check: the
initial BC policy deployed for `--episodes` episodes under the real value-based model with the
task's calibrated alpha (`sim.intervention.calibrated_alpha`), holds and all, as round 1 of the
loop deploys it.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def decision_shares(q_expert, q_policy, alpha: float) -> dict:
  """{'signed': p, 'literal': p}: how often each form of the rule rates the expert clearly
  better over the given Q pairs."""
  from sim import intervention as iv
  return {'signed': float(np.mean(iv.expert_clearly_better(q_expert, q_policy, alpha))),
          'literal': float(np.mean(alpha * np.asarray(q_expert) > np.asarray(q_policy)))}


def control_fraction(p: float, beta: float, hold_steps: int) -> float:
  """The long-run share of expert-controlled steps when a free step's decision is 'clearly
  better' with probability p (see the module docstring)."""
  from sim import intervention as iv
  return iv.expert_control_fraction(beta * p + (1 - beta) * (1 - p), hold_steps)


def q_pairs(task, reference, policy, expert, episodes: int, seed: int):
  """(Q_ref(s, a_exp), Q_ref(s, a_pi)) at every state the policy visits running alone."""
  from sim import collector
  from sim import intervention as iv
  qe, qp = [], []
  for _, episode in collector.run_episodes(task, expert, episodes, seed, 20_000,
                                           policy=policy,
                                           intervention_model=iv.make_model('never')):
    obs = episode.observations[:-1]
    qe.append(reference.q(obs, episode.expert_actions))
    qp.append(reference.q(obs, episode.policy_actions))
  return np.concatenate(qe), np.concatenate(qp)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', default='door')
  parser.add_argument('--level', default='40')
  parser.add_argument('--episodes', type=int, default=10)
  parser.add_argument('--alphas', default='0.995,0.99,0.98,0.97,0.95,0.9,0.8')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--expert_dir', default=os.path.join(REPO, '..', 'shared', 'experts',
                                                           'adroit'))
  from sim import loop
  parser.add_argument('--run_dir', default=os.path.join(loop.RUNS_ROOT, 'calibration'))
  args = parser.parse_args()
  from sim import collector
  from sim import experts as experts_lib
  from sim import intervention as iv
  alphas = [float(a) for a in args.alphas.split(',')]
  config = iv.ValueBasedConfig()
  spec = loop.LoopSpec(task=args.task, method='rlif_value', seed=args.seed, rounds=0,
                       expert_noise=experts_lib.calibrated_noise(args.task, args.level),
                       eval_episodes=args.episodes)
  the_loop = loop.RlifLoop(spec, os.path.join(args.run_dir, f'{args.task}-level{args.level}'),
                           args.expert_dir, os.path.join(loop.RUNS_ROOT, 'reference'))
  rows = the_loop.run()  # round 0: demonstrations and the initial BC policy, evaluated
  reference = the_loop.reference()
  base = the_loop.base_expert
  policies = [(f'initial BC (~{args.level}% expert demos, success '
               f'{100 * rows[0]["eval"]["success_rate"]:.0f}%)',
               collector.load_saved_policy(the_loop._policy_dir(0)))]
  for level in ('10', '40', '90'):
    noise = experts_lib.calibrated_noise(args.task, level)
    if noise > 0:
      noisy = experts_lib.NoisyExpert(base, noise)
      rng = np.random.default_rng(args.seed)
      policies.append((f'expert at ~{level}% (noise {noise})',
                       lambda obs, noisy=noisy, rng=rng: noisy.act(obs, rng)))
  policies.append(('expert, noise-free', lambda obs: base.act(obs)))

  lines = [f'# Value-based interventions on {args.task}', '',
           f'Q_ref: {os.path.relpath(reference.directory, loop.RUNS_ROOT)}. Each policy ran '
           'alone for '
           f'{args.episodes} episodes; '
           f'beta {config.beta}, hold {config.hold_steps} steps. Cells: predicted share of '
           'steps under expert control in a round with this policy, signed rule / paper\'s '
           'literal rule (benchmarks/intervention_calibration.py docstring).', '',
           '| policy | Q_exp mean | Q_exp - Q_pi mean (std) | '
           + ' | '.join(f'alpha {a}' for a in alphas) + ' |',
           '|---|---|---|' + '---|' * len(alphas)]
  for name, policy in policies:
    qe, qp = q_pairs(the_loop.task, reference, policy, base, args.episodes, args.seed)
    cells = []
    for alpha in alphas:
      shares = decision_shares(qe, qp, alpha)
      cells.append(' / '.join(
          f'{100 * control_fraction(shares[k], config.beta, config.hold_steps):.0f}%'
          for k in ('signed', 'literal')))
    gap = qe - qp
    lines.append(f'| {name} | {qe.mean():.3f} | {gap.mean():.3f} ({gap.std():.3f}) | '
                 + ' | '.join(cells) + ' |')
    print(lines[-1], flush=True)
  alpha = iv.calibrated_alpha(args.task)
  model = iv.make_model('value', seed=args.seed, q_ref=reference,
                        config=iv.ValueBasedConfig(alpha=alpha))
  flags = [episode.interventions for _, episode in collector.run_episodes(
      the_loop.task, base, args.episodes, args.seed, 1, policy=policies[0][1],
      intervention_model=model)]
  lines += ['', f'Measured: the initial BC policy under the value-based model with the calibrated '
            f'alpha {alpha} (sim.intervention.CALIBRATED_ALPHA), {args.episodes} episodes: the '
            f'expert controlled {100 * np.mean(np.concatenate(flags)):.0f}% of steps.']
  out_dir = os.path.join(REPO, 'benchmarks', 'results', 'intervention_calibration')
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f'{args.task}.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
