import glob
import os

import numpy as np

from benchmarks import grid_runs
from sim import collector, experts, intervention, tasks
from tests.sim import shared_files


def test_policy_steps_are_the_steps_the_policy_controlled(tmp_path):
  task = tasks.get_task('pen')
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), task)
  policy = lambda observation: np.full(24, 0.25)  # one row at a time  # noqa: E731
  model = intervention.RandomIntervention(intervention.RandomConfig(0.5, hold_steps=2), seed=1)
  out = os.path.join(tmp_path, 'raw', 'round_1')
  summary = collector.collect_round(task, policy, expert, model, 2, out, 0, 1, episode_length=12)
  observations, proposals, onsets = grid_runs.policy_steps(str(tmp_path), 1)
  controlled = round(2 * 12 * (1 - summary['intervention_rate']))
  assert 0 < controlled < 24 and observations.shape == (controlled, 45)
  np.testing.assert_array_equal(proposals, np.full((controlled, 24), 0.25))
  # They are the states the policy acted in: the expert's own steps are not among them.
  with np.load(sorted(glob.glob(os.path.join(out, '*.npz')))[0]) as episode:
    taken = episode['interventions'].astype(bool)
    first = episode['observations'][:12][~taken]
  np.testing.assert_array_equal(observations[:len(first)], first.astype(np.float64))
  # Onsets: the policy's steps right before a takeover starts (the steps the -1 goes to).
  expected_onsets = [t for t in range(11) if not taken[t] and taken[t + 1]]
  assert expected_onsets  # hold_steps 2 at beta 0.5: this episode has takeovers
  np.testing.assert_array_equal(np.flatnonzero(onsets[:len(first)]),
                                [np.flatnonzero(~taken).tolist().index(t)
                                 for t in expected_onsets])
  # The return from each of those steps: -0.5^(k - t) for every onset k >= t in the episode.
  returns = grid_runs.policy_step_returns(str(tmp_path), 1, gamma=0.5)
  assert returns.shape == (controlled,)
  by_hand = [-sum(0.5 ** (k - t) for k in expected_onsets if k >= t)
             for t in np.flatnonzero(~taken)]
  np.testing.assert_allclose(returns[:len(first)], by_hand)


def test_row_learner_is_the_benchmark_rows_learner():
  learner, settings, prior = grid_runs.row_learner('rlif_value+bc_demo+refused+prior0.25',
                                                        'pen')
  assert learner == 'rlif' and prior == 0.25
  assert settings['bc_actions'] == 'demonstrated' and settings['refused_proposals'] is True
  learner, settings, prior = grid_runs.row_learner('rlif_value', 'pen')
  assert settings['bc_actions'] == 'demonstrated' and settings['accepted_window'] == 5
  assert settings['refused_proposals'] is False
  # The rows that ran the earlier default (the term on every logged action) read it back.
  _, earlier, _ = grid_runs.row_learner('rlif_value+bc_all+nstep10', 'pen')
  assert (earlier['bc_actions'], earlier['accepted_window'], earlier['n_step']) == ('all', 0, 10)
  _, demo, _ = grid_runs.row_learner('rlif_value+bc_demo', 'pen')
  assert (demo['bc_actions'], demo['accepted_window']) == ('demonstrated', 0)
  # None: the trainer takes configs/rlif.toml's prior_fraction, as the benchmark rows do.
  assert prior is None and settings['prior_fraction'] == 0.75
