"""The reward rule on literal episodes: every case of the RLIF relabeling spec."""

import numpy as np
import pytest

from pipeline import relabel as rl
from pipeline import schema as sc
from pipeline.raw_format import RawEpisode

F, T_ = False, True


def episode(flags, terminated=False, policy=False, final_flag=None):
  """An episode with observation [t, 10 t] and action [t / 100] at step t.

  `flags` are the T per-step intervention flags (None: a demonstration without flags);
  `final_flag` adds the (T+1)-th flag, for the final observation.
  """
  n = 4 if flags is None else len(flags)
  steps = np.arange(n + 1, dtype=np.float32)
  obs = np.stack([steps, 10 * steps], axis=1)
  act = (steps[:n] / 100)[:, None]
  if flags is not None and final_flag is not None:
    flags = list(flags) + [final_flag]
  return RawEpisode(observations=obs, actions=act,
                    interventions=None if flags is None else np.array(flags, bool),
                    policy_actions=act * 2 if policy else None, terminated=terminated,
                    metadata={'episode_id': 'e'}, source='e.npz')


def only(episodes):
  assert len(episodes) == 1
  return episodes[0].steps


def test_takeover_mid_episode_penalizes_the_transition_into_it():
  steps = only(rl.relabel(episode([F, F, T_, T_, F])))
  np.testing.assert_array_equal(steps[sc.REWARD], [0, -1, 0, 0, 0, 0])
  np.testing.assert_array_equal(steps[sc.IS_INTERVENTION], [F, F, T_, T_, F, F])
  np.testing.assert_array_equal(steps[sc.DISCOUNT], [1, 1, 1, 1, 1, 1])
  np.testing.assert_array_equal(steps[sc.IS_FIRST], [T_, F, F, F, F, F])
  np.testing.assert_array_equal(steps[sc.IS_LAST], [F, F, F, F, F, T_])
  np.testing.assert_array_equal(steps[sc.IS_TERMINAL], [F] * 6)
  # SAR alignment: observation t with action t; the final step holds s_T and a zero action.
  np.testing.assert_array_equal(steps[sc.OBSERVATION][:, 0], [0, 1, 2, 3, 4, 5])
  np.testing.assert_allclose(steps[sc.ACTION][:, 0], [0, .01, .02, .03, .04, 0])


def test_takeover_at_step_zero_has_no_preceding_transition():
  steps = only(rl.relabel(episode([T_, T_, F, F])))
  np.testing.assert_array_equal(steps[sc.REWARD], [0, 0, 0, 0, 0])
  np.testing.assert_array_equal(steps[sc.IS_INTERVENTION], [T_, T_, F, F, F])


def test_operator_ending_the_episode_by_takeover_penalizes_last_policy_transition():
  # interventions has T+1 entries and only the final observation's flag is set.
  steps = only(rl.relabel(episode([F, F, F], final_flag=True)))
  np.testing.assert_array_equal(steps[sc.REWARD], [0, 0, -1, 0])
  np.testing.assert_array_equal(steps[sc.IS_INTERVENTION], [F, F, F, T_])


def test_takeover_on_the_last_action_step():
  steps = only(rl.relabel(episode([F, F, T_])))
  np.testing.assert_array_equal(steps[sc.REWARD], [0, -1, 0, 0])


def test_each_of_several_takeovers_gets_one_penalty():
  eps = rl.relabel(episode([F, T_, F, F, T_, T_, T_, F, T_]))
  steps = only(eps)
  np.testing.assert_array_equal(steps[sc.REWARD], [-1, 0, 0, -1, 0, 0, 0, -1, 0, 0])
  assert eps[0].num_takeovers == 3
  assert eps[0].num_intervention_steps == 5
  assert eps[0].takeover_lengths == (1, 3, 1)


def test_terminal_episode_has_zero_discount_into_the_terminal_state():
  steps = only(rl.relabel(episode([F, F, F], terminated=True)))
  np.testing.assert_array_equal(steps[sc.DISCOUNT], [1, 1, 0, 0])
  np.testing.assert_array_equal(steps[sc.IS_TERMINAL], [F, F, F, T_])
  np.testing.assert_array_equal(steps[sc.IS_LAST], [F, F, F, T_])


def test_truncated_episode_ends_last_but_not_terminal():
  steps = only(rl.relabel(episode([F, F, F], terminated=False)))
  np.testing.assert_array_equal(steps[sc.DISCOUNT], [1, 1, 1, 1])
  assert steps[sc.IS_LAST][-1] and not steps[sc.IS_TERMINAL][-1]


def test_demonstration_without_flags_has_zero_rewards():
  eps = rl.relabel(episode(None))
  steps = only(eps)
  np.testing.assert_array_equal(steps[sc.REWARD], np.zeros(5))
  assert not steps[sc.IS_INTERVENTION].any()
  assert eps[0].num_takeovers == 0


def test_policy_action_is_nan_unless_logged():
  assert np.isnan(only(rl.relabel(episode([F, F])))[sc.POLICY_ACTION]).all()
  steps = only(rl.relabel(episode([F, F], policy=True)))
  np.testing.assert_allclose(steps[sc.POLICY_ACTION][:2, 0], [0, .02])
  assert np.isnan(steps[sc.POLICY_ACTION][2]).all()  # The final step has no action.


def test_drop_keeps_only_the_last_step_of_each_takeover_and_splits_the_episode():
  #        t: 0  1  2   3   4   5  6
  flags = [F, F, T_, T_, T_, F, F]
  parts = rl.relabel(episode(flags), rl.Takeover.DROP)
  assert [p.segment for p in parts] == [0, 1]
  before, after = parts[0].steps, parts[1].steps
  # Part 0: s0 -a0-> s1 -a1 (-1)-> s2, ending at the takeover's first observation (truncation).
  np.testing.assert_array_equal(before[sc.OBSERVATION][:, 0], [0, 1, 2])
  np.testing.assert_array_equal(before[sc.REWARD], [0, -1, 0])
  np.testing.assert_array_equal(before[sc.IS_LAST], [F, F, T_])
  np.testing.assert_array_equal(before[sc.IS_TERMINAL], [F, F, F])
  np.testing.assert_array_equal(before[sc.DISCOUNT], [1, 1, 1])
  np.testing.assert_allclose(before[sc.ACTION][:, 0], [0, .01, 0])
  # Part 1 starts at the takeover's last step (4): steps 2 and 3 are dropped.
  np.testing.assert_array_equal(after[sc.OBSERVATION][:, 0], [4, 5, 6, 7])
  np.testing.assert_allclose(after[sc.ACTION][:, 0], [.04, .05, .06, 0])
  np.testing.assert_array_equal(after[sc.IS_INTERVENTION], [T_, F, F, F])
  np.testing.assert_array_equal(after[sc.IS_FIRST], [T_, F, F, F])
  np.testing.assert_array_equal(after[sc.REWARD], [0, 0, 0, 0])


def test_drop_with_takeover_at_start_and_terminal_end():
  parts = rl.relabel(episode([T_, T_, T_, F], terminated=True), rl.Takeover.DROP)
  steps = only(parts)
  np.testing.assert_array_equal(steps[sc.OBSERVATION][:, 0], [2, 3, 4])
  np.testing.assert_array_equal(steps[sc.DISCOUNT], [1, 0, 0])
  np.testing.assert_array_equal(steps[sc.IS_TERMINAL], [F, F, T_])


def test_drop_leaves_one_step_takeovers_and_unflagged_episodes_whole():
  keep = only(rl.relabel(episode([F, T_, F, F])))
  drop = only(rl.relabel(episode([F, T_, F, F]), rl.Takeover.DROP))
  for key in keep:
    np.testing.assert_array_equal(keep[key], drop[key])


@pytest.mark.parametrize('flags,rewards', [
    ([F, F, F, F], [0, 0, 0, 0]),
    ([T_, F, T_, F], [0, -1, 0, 0]),
    ([F, T_, T_, T_], [-1, 0, 0, 0]),
])
def test_intervention_rewards(flags, rewards):
  np.testing.assert_array_equal(rl.intervention_rewards(np.array(flags + [False])), rewards)
