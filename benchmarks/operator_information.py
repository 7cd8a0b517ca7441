r"""What a simulated operator's takeover decisions say about the policy, per task.

  python benchmarks/operator_information.py --task pen [--episodes 6] [--every 5]

RLIF learns from where the operator takes over, so a takeover rule is only as useful as its
decisions are about the policy. For policies of known quality (the task's expert noise-free and
at its calibrated ~90/40/10% noise, each acting alone), at every `--every`-th state this measures
how often each rule flags the step (the rule alone, before beta's random part and the hold):

  * `learned Q_ref`: the benchmark's value model, Eq. A.2 with the reference critic
    (sim/reference.py) and the task's calibrated alpha; only where that critic is cached;
  * `exact Q_H`: the same rule with the expert's true H-step Q from the simulator
    (sim.lookahead: the action, then the expert), the value model with a perfect critic;
  * `foresight`: the policy's action followed by the policy against the expert's action followed
    by the expert, H steps (sim.intervention.ForesightIntervention).

An informative rule flags worse policies more, and flags more in the episodes that go on to fail
than in those that succeed. Also: how often the exact Q_H rates the expert's action above the
policy's at all (0.5: a coin). Writes benchmarks/results/operator_information/<task>.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RULES = ('learned Q_ref', 'exact Q_H', 'foresight')


def measure(task, base_expert, policy_noise: float, critic, reference, alpha_value: float,
            alpha_foresight: float, episodes: int, every: int, seed: int) -> dict:
  """Per episode: success and, per rule, the flags at the sampled states; plus the exact
  critic's ranking P(Q_H(s, a_exp) > Q_H(s, a_pi))."""
  from sim import experts as experts_lib
  from sim import intervention as iv
  from sim import lookahead
  from sim import tasks as tasks_lib
  policy = experts_lib.NoisyExpert(base_expert, policy_noise)
  env = tasks_lib.make_env(task, seed=seed)
  rows = []
  for e in range(episodes):
    rng = np.random.default_rng([seed, e])
    obs, _ = env.reset(seed=seed * 1000 + e)
    flags = {rule: [] for rule in RULES}
    wins, successes = [], []
    for t in range(task.episode_length):
      # Clipped to the action bounds, as the collector hands them to the operator.
      a_exp = np.clip(base_expert.act(obs), -1, 1)
      a_pi = np.clip(policy.act(obs, rng), -1, 1)
      if t % every == 0:
        state = lookahead.snapshot(env)
        q = critic.q([state, state], np.stack([a_exp, a_pi]))
        flags['exact Q_H'].append(bool(iv.expert_clearly_better(q[0], q[1], alpha_value)))
        if not np.array_equal(a_exp, a_pi):  # a tie says nothing
          wins.append(q[0] > q[1])
        # The policy's continuation draws its own noise, from a stream of its own.
        follow_rng = np.random.default_rng([seed, e, t])
        follow = lambda o: np.clip(policy.act(o, follow_rng), -1, 1)
        qe, qp = critic.compare([state], a_exp[None], a_pi[None], follow)
        flags['foresight'].append(bool(iv.expert_clearly_better(qe[0], qp[0],
                                                                 alpha_foresight)))
        if reference is not None:
          qr = reference.q(np.stack([obs, obs]), np.stack([a_exp, a_pi]))
          flags['learned Q_ref'].append(bool(iv.expert_clearly_better(qr[0], qr[1],
                                                                       alpha_value)))
      obs, _, terminated, truncated, info = env.step(a_pi)
      successes.append(bool(info.get('success', False)))
      if terminated or truncated:
        break
    rows.append({'success': task.is_success(successes), 'flags': flags, 'wins': wins})
  return rows


def summarize(rows) -> dict:
  out = {'success': float(np.mean([r['success'] for r in rows])),
         'ranking': _mean([w for r in rows for w in r['wins']])}
  for rule in RULES:
    if not rows[0]['flags'][rule]:
      continue
    rate = lambda rs: _mean([f for r in rs for f in r['flags'][rule]])
    out[rule] = {'all': rate(rows), 'failed': rate([r for r in rows if not r['success']]),
                 'succeeded': rate([r for r in rows if r['success']])}
  return out


def _mean(values):
  return float(np.mean(values)) if len(values) else None


def _pct(x):
  return '-' if x is None else f'{100 * x:.0f}%'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--task', default='pen')
  parser.add_argument('--episodes', type=int, default=6)
  parser.add_argument('--every', type=int, default=5)
  parser.add_argument('--horizon', type=int, default=None,
                      help='lookahead steps (default: the foresight model\'s)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--expert_dir', default=os.path.join(REPO, '..', 'shared', 'experts',
                                                           'adroit'))
  parser.add_argument('--out', default=os.path.join(REPO, 'benchmarks', 'results',
                                                    'operator_information'))
  args = parser.parse_args(argv)

  from sim import experts as experts_lib
  from sim import intervention as iv
  from sim import lookahead
  from sim import loop
  from sim import reference as reference_lib
  from sim import tasks as tasks_lib
  import tensorflow as tf
  task = tasks_lib.get_task(args.task)
  base = experts_lib.MlpExpert.load(os.path.join(args.expert_dir, task.expert_file), task)
  foresight = iv.ForesightConfig()
  horizon = args.horizon or foresight.horizon
  critic = lookahead.LookaheadCritic(task, base, horizon=horizon, gamma=foresight.gamma)
  spec = reference_lib.ReferenceSpec.for_task(task)
  cache = os.path.join(loop.RUNS_ROOT, 'reference')
  key = spec.key(base.describe())
  reference = None
  if tf.io.gfile.exists(os.path.join(cache, f'{task.name}-{key}', 'spec.json')):
    reference = reference_lib.load_or_train(task, base, spec, cache, log=lambda m: None)
  alpha = iv.calibrated_alpha(task.name)

  policies = [('expert, noise-free', 0.0)]
  for level in ('90', '40', '10'):
    noise = experts_lib.calibrated_noise(task, level)
    if noise > 0:  # pen's ~90% is the noise-free expert
      policies.append((f'expert at ~{level}%', noise))
  lines = [
      f'# What the operator\'s decisions say: {task.name}', '',
      f'Each policy acted alone for {args.episodes} episodes; every {args.every}th state, each '
      f'rule\'s flag (before beta and the hold). Value rules: alpha {alpha} '
      f'(sim.intervention.calibrated_alpha); foresight: alpha {foresight.alpha}; lookahead '
      f'{horizon} steps. `exact Q_H > ` is how often the true H-step Q rates the expert\'s action '
      f'above the policy\'s (0.5: a coin). Cells: flagged share of all / failed / successful '
      f'episodes\' states. Made by benchmarks/operator_information.py.', '',
      '| policy | noise | success | exact Q_H > | ' + ' | '.join(RULES) + ' |',
      '|---|---|---|---|' + '---|' * len(RULES)]
  for name, noise in policies:
    rows = measure(task, base, noise, critic, reference, alpha, foresight.alpha,
                   args.episodes, args.every, args.seed)
    s = summarize(rows)
    cells = []
    for rule in RULES:
      r = s.get(rule)
      cells.append('-' if r is None else
                   f'{_pct(r["all"])} / {_pct(r["failed"])} / {_pct(r["succeeded"])}')
    ranking = '-' if s['ranking'] is None else f'{s["ranking"]:.2f}'
    lines.append(f'| {name} | {noise:.4g} | {100 * s["success"]:.0f}% | {ranking} | '
                 + ' | '.join(cells) + ' |')
    print(lines[-1], flush=True)
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, f'{task.name}.md')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print(f'wrote {path}')


if __name__ == '__main__':
  main()
