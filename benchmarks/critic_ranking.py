r"""Does the RLIF learner's critic know which way a better action lies? Its ranking of the
policy's actions against the expert's, and where its actor moved, measured against Q_ref.

  python benchmarks/critic_ranking.py --grid pen_distorted \
      --runs 'level40/rlif_value+judge_clean+alpha0.99-s0' [--round 5]

Reads finished loop runs of a benchmark grid (`~/rlif_runs/benchmark/<grid>/<run>`): the
learner's newest checkpoint (critics and actor after the run's last round), one raw round's
policy-controlled steps, and the task's cached reference agent Q_ref (the simulated operator's
judge). At every such step s with the policy's logged proposal a_pi it compares three actions:
a_pi, the undegraded expert's executed action a_exp (`sim.experts.executed_actions`) and the
final actor's deployed action a_new = tanh(mean(s)). Per run:

- dQ = Q(s, a_exp) - Q(s, a_pi) under Q_ref and under the learner's critics (the ensemble mean,
  what the actor climbs): their quantiles, Spearman's rank correlation, and how often the learner
  orders the pair as Q_ref does where Q_ref is clear (|dQ_ref| above its median).
- The same at the takeover onsets the operator flagged (where Q_ref rated the expert's action
  clearly better and the step before got the -1).
- Where the actor went: Q_ref(s, a_new) - Q_ref(s, a_pi) (did the last round's training improve
  the actions by the judge's measure?) and the learner's own estimate of that gain.
- The learner's Q scale (mean |Q|) and the spread of its dQ beside the behaviour term's pull:
  bc_weight * |a_new - a_pi|^2, the loss the actor pays to leave the logged action.

No simulation. Writes benchmarks/results/critic_ranking/<grid>.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def spearman(x, y) -> float:
  """Spearman's rank correlation (no ties expected in continuous values)."""
  rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
  return float(np.corrcoef(rx, ry)[0, 1])


def agreement(d_learned, d_ref) -> float:
  """Share of the pairs Q_ref orders clearly (|d_ref| above its median) that the learner orders
  the same way."""
  clear = np.abs(d_ref) > np.median(np.abs(d_ref))
  return float(np.mean(np.sign(d_learned[clear]) == np.sign(d_ref[clear])))


def load_learner(run_dir: str, label: str, task):
  """The run's RLIF agent restored from its learner's newest checkpoint, with the settings the
  benchmark row `label` (method[+variant...]) trained it with."""
  import tensorflow as tf
  from benchmarks import grid_runs
  from trainer import learners
  learner, settings, _ = grid_runs.row_learner(label, task.name)
  agent_settings, _ = learners.split_settings(settings)
  agent = learners.LEARNERS[learner].make_agent(task.observation_dim, task.action_dim,
                                                **agent_settings)
  latest = tf.train.latest_checkpoint(os.path.join(run_dir, 'learner', 'checkpoints'))
  if latest is None:
    raise FileNotFoundError(f'{run_dir}: no learner checkpoint')
  tf.train.Checkpoint(agent=agent).restore(latest).expect_partial()
  return agent, float(agent_settings.get('bc_weight', 0.0)), latest


def learner_q(agent, observations, actions) -> np.ndarray:
  """[N] ensemble-mean Q of the learner's critics (what its actor climbs)."""
  import tensorflow as tf
  q, _ = agent.critic_network((tf.constant(observations, tf.float32),
                               tf.constant(actions, tf.float32)))
  return tf.reduce_mean(q, axis=0).numpy()


def deployed_actions(agent, observations) -> np.ndarray:
  """[N, A] the actor's deployed action tanh(mean)."""
  import tensorflow as tf
  mean, _ = agent.actor_network.mean_and_log_std(tf.constant(observations, tf.float32))
  return np.tanh(mean.numpy()).astype(np.float64)


def _q(values) -> str:
  p = np.percentile(values, [10, 50, 90])
  return f'{p[0]:.3f} / {p[1]:.3f} / {p[2]:.3f}'


def measure(agent, bc_weight, q_ref, clean_expert, observations, proposals, onsets,
            returns) -> dict:
  from sim import experts
  a_exp = experts.executed_actions(clean_expert, observations)
  a_new = deployed_actions(agent, observations)
  q_ref_pi = q_ref.q(observations, proposals)
  d_ref = q_ref.q(observations, a_exp) - q_ref_pi
  q_pi = learner_q(agent, observations, proposals)
  d_learned = learner_q(agent, observations, a_exp) - q_pi
  gain_ref = q_ref.q(observations, a_new) - q_ref_pi
  gain_learned = learner_q(agent, observations, a_new) - q_pi
  row = {'steps': len(observations), 'onsets': int(onsets.sum()),
         'dq_ref': _q(d_ref), 'dq_learned': _q(d_learned),
         'spearman': spearman(d_learned, d_ref), 'agreement': agreement(d_learned, d_ref),
         'gain_ref': _q(gain_ref), 'gain_learned': _q(gain_learned),
         'q_abs': float(np.mean(np.abs(q_pi))),
         'q_mean': float(np.mean(q_pi)), 'logged_return': float(np.mean(returns)),
         'bc_pull': _q(bc_weight * np.sum(np.square(a_new - proposals), axis=-1))}
  if onsets.any():
    row['onset_learned_exp_better'] = float(np.mean(d_learned[onsets] > 0))
    row['onset_ref_exp_better'] = float(np.mean(d_ref[onsets] > 0))
  return row


def row_cells(row: dict) -> str:
  """`measure`'s numbers as the table's cells from dQ_ref to BC pull."""
  onset_cell = (f"{100 * row['onset_ref_exp_better']:.0f}% / "
                f"{100 * row['onset_learned_exp_better']:.0f}%" if row['onsets'] else '-')
  return (f"{row['dq_ref']} | {row['dq_learned']} | {row['spearman']:.2f} | "
          f"{100 * row['agreement']:.0f}% | {onset_cell} | {row['gain_ref']} | "
          f"{row['gain_learned']} | {row['q_abs']:.3f} | {row['q_mean']:.2f} / "
          f"{row['logged_return']:.2f} | {row['bc_pull']}")


def main(argv=None) -> None:
  from benchmarks import grid_runs
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--grid', default='pen_distorted')
  parser.add_argument('--runs', default='level40/rlif_value+judge_clean+alpha0.99-s0')
  parser.add_argument('--round', type=int, default=5, help='the raw round whose states to use')
  grid_runs.add_location_arguments(parser, 'critic_ranking')
  args = parser.parse_args(argv)
  lines = [f'# The learner\'s critic against Q_ref: {args.grid}', '',
           f'`python benchmarks/critic_ranking.py --grid {args.grid} --runs {args.runs} '
           f'--round {args.round}`', '',
           f'States: the policy-controlled steps of raw round {args.round}; the learner: its '
           'newest checkpoint (after the run\'s last round). dQ = Q(a_exp) - Q(a_pi), a_exp = '
           'the undegraded expert\'s executed action, a_pi = the logged proposal; 10/50/90th '
           'percentiles. Rank = Spearman between the learner\'s dQ and Q_ref\'s; agree = share '
           'of the pairs Q_ref orders clearly (|dQ_ref| above its median) that the learner '
           'orders the same way. Onsets: the steps before a takeover (the -1s); "exp better" = '
           'share where dQ > 0. Gain = Q(a_new) - Q(a_pi), a_new = the final actor\'s deployed '
           'action. |Q| = the learner\'s mean |Q(a_pi)|; Q / return = its mean Q(a_pi) beside the '
           'mean discounted return the logged continuation earned from those steps (what a '
           'converged critic of the behaviour would be near; grid_runs.policy_step_returns); '
           'BC pull = bc_weight * |a_new - a_pi|^2.', '',
           '| run | steps | onsets | dQ_ref | dQ learned | rank | agree | onsets exp better: '
           'ref / learned | gain by Q_ref | gain by learner | learner abs Q | Q / return | BC pull |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  grid = grid_runs.GridReader(args.root, args.grid, args.expert_dir)
  for run in args.runs.split(','):
    opened = grid.open(run)
    agent, bc_weight, checkpoint = load_learner(opened.directory, opened.label, opened.task)
    observations, proposals, onsets = grid_runs.policy_steps(opened.directory, args.round)
    returns = grid_runs.policy_step_returns(opened.directory, args.round, agent.gamma)
    row = measure(agent, bc_weight, opened.q_ref, opened.expert, observations, proposals,
                  onsets, returns)
    lines.append(f"| {run} ({os.path.basename(checkpoint)}) | {row['steps']} | {row['onsets']} "
                 f"| {row_cells(row)} |")
    print(lines[-1], flush=True)
  grid_runs.write_lines(args.out, args.grid, lines)


if __name__ == '__main__':
  main()
