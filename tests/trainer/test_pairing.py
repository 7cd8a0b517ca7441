"""Transitions are formed inside episodes; terminal and truncated ends differ only in discount."""

import numpy as np
import pytest

from pipeline import relabel as rl
from pipeline.raw_format import RawEpisode
from trainer import pairing


def rlds_steps(T, terminated, flags=None, offset=0.0):
  obs = np.arange(T + 1, dtype=np.float32)[:, None] + offset
  raw = RawEpisode(observations=obs, actions=np.zeros((T, 1), np.float32),
                   interventions=None if flags is None else np.array(flags),
                   policy_actions=None, terminated=terminated, metadata={'episode_id': 'e'},
                   source='e')
  return rl.relabel(raw)[0].steps


def test_terminal_episode_ends_with_zero_discount():
  t = pairing.episode_transitions(rlds_steps(3, terminated=True))
  np.testing.assert_array_equal(t['discount'], [1, 1, 0])
  np.testing.assert_array_equal(t['next_observation'][:, 0], [1, 2, 3])


def test_truncated_episode_bootstraps_from_its_final_observation():
  t = pairing.episode_transitions(rlds_steps(3, terminated=False))
  np.testing.assert_array_equal(t['discount'], [1, 1, 1])
  np.testing.assert_array_equal(t['next_observation'][:, 0], [1, 2, 3])


def test_rewards_and_takeover_flags_travel_with_their_transition():
  t = pairing.episode_transitions(rlds_steps(4, False, [False, True, True, False]))
  np.testing.assert_array_equal(t['reward'], [-1, 0, 0, 0])
  np.testing.assert_array_equal(t['is_intervention'], [False, True, True, False])


def test_no_pair_crosses_an_episode_boundary():
  a = pairing.episode_transitions(rlds_steps(3, False))
  b = pairing.episode_transitions(rlds_steps(2, True, offset=100.0))
  both = pairing.concatenate([a, b])
  assert pairing.size(both) == 5  # 3 + 2: the final steps contribute observations only.
  # Every transition's next observation is its own observation + 1 (same episode).
  np.testing.assert_array_equal(both['next_observation'] - both['observation'], np.ones((5, 1)))
  assert 100.0 not in both['next_observation'][:3]


def test_terminal_flag_wins_over_a_logged_discount():
  np.testing.assert_array_equal(
      pairing.transition_discount(np.array([1.0, 1.0, 0.5]), np.array([False, True, False])),
      [1.0, 0.0, 0.5])


def test_single_step_episode_has_no_transition():
  steps = {k: v[:1] for k, v in rlds_steps(1, False).items()}
  assert pairing.size(pairing.episode_transitions(steps)) == 0


def test_demonstrated_is_every_prior_action_and_the_takeover_steps_otherwise():
  transitions = {'reward': np.zeros(4, np.float32),
                 'is_intervention': np.array([False, True, True, False])}
  np.testing.assert_array_equal(pairing.demonstrated(transitions, is_prior=True), [1, 1, 1, 1])
  np.testing.assert_array_equal(pairing.demonstrated(transitions, is_prior=False), [0, 1, 1, 0])
  with pytest.raises(ValueError, match='keys'):
    pairing.concatenate([transitions, {'reward': np.zeros(1, np.float32)}])


def test_expert_labelled_takes_the_label_or_the_humans_action_and_drops_the_rest():
  nan = np.nan
  transitions = {
      'observation': np.arange(4, dtype=np.float32)[:, None],
      'action': np.array([[0.1], [0.2], [0.3], [0.4]], np.float32),
      'reward': np.zeros(4, np.float32),
      'is_intervention': np.array([False, True, False, True]),
      'expert_action': np.array([[0.9], [nan], [nan], [0.7]], np.float32),
  }
  out = pairing.expert_labelled(transitions)
  # Step 0: labelled (policy acted): its label. Step 1: the human acted, no label: its action.
  # Step 2: the policy acted, no label: dropped. Step 3: label wins over the executed action.
  np.testing.assert_array_equal(out['observation'][:, 0], [0, 1, 3])
  np.testing.assert_allclose(out['action'][:, 0], [0.9, 0.2, 0.7])


def test_dict_observations_pair_field_by_field_and_images_stay_uint8():
  T = 4
  frames = np.arange(T + 1, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
  obs = {'camera': frames, 'state': np.arange(T + 1, dtype=np.float64)[:, None] * [1.0, -1.0]}
  raw = RawEpisode(observations=obs, actions=np.zeros((T, 1), np.float32),
                   interventions=np.array([0, 1, 1, 0], bool),
                   policy_actions=np.full((T, 1), 0.5, np.float32), terminated=False,
                   metadata={'episode_id': 'e'}, source='e')
  steps = rl.relabel(raw)[0].steps
  t = pairing.episode_transitions(steps)
  refused = pairing.refused_proposals(steps)  # the takeover at step 1: its frame, as uint8
  assert refused['observation']['camera'].dtype == np.uint8
  np.testing.assert_array_equal(refused['observation']['camera'][:, 0, 0, 0], [1])
  np.testing.assert_array_equal(refused['observation']['state'], [[1, -1]])
  assert t['observation']['camera'].dtype == np.uint8
  assert t['observation']['state'].dtype == np.float32
  np.testing.assert_array_equal(t['observation']['camera'][:, 0, 0, 0], [0, 1, 2, 3])
  np.testing.assert_array_equal(t['next_observation']['camera'][:, 0, 0, 0], [1, 2, 3, 4])
  np.testing.assert_array_equal(t['next_observation']['state'][:, 1], [-1, -2, -3, -4])
  np.testing.assert_array_equal(t['reward'], [-1, 0, 0, 0])

  both = pairing.concatenate([t, t])
  assert both['observation']['camera'].shape == (8, 2, 2, 3) and pairing.size(both) == 8
  kept = pairing.select(both, both['is_intervention'])
  np.testing.assert_array_equal(kept['observation']['camera'][:, 0, 0, 0], [1, 2, 1, 2])
  np.testing.assert_array_equal(kept['next_observation']['state'][:, 0], [2, 3, 2, 3])
  # n-step next observations are picked field by field too, within each copy of the episode.
  three = pairing.multi_step(both, [4, 4], n=3, gamma=0.5)
  assert three['next_observation']['camera'].dtype == np.uint8
  np.testing.assert_array_equal(three['next_observation']['camera'][:, 0, 0, 0],
                                [3, 4, 4, 4] * 2)
  np.testing.assert_array_equal(three['next_observation']['state'][:, 0], [3, 4, 4, 4] * 2)

  empty = pairing.episode_transitions({k: v[:1] if not isinstance(v, dict) else
                                       {n: f[:1] for n, f in v.items()}
                                       for k, v in steps.items()})
  assert empty['observation']['camera'].shape == (0, 2, 2, 3)
  assert empty['observation']['camera'].dtype == np.uint8
  assert empty['next_observation']['state'].shape == (0, 2)


def test_refused_proposals_are_terminal_penalties_at_each_takeover_state():
  T = 7
  obs = np.arange(T + 1, dtype=np.float32)[:, None] * 10.0
  proposed = np.arange(T, dtype=np.float32)[:, None] / 10.0
  # Takeovers start at steps 2 and 5; the operator also holds the final observation (step 7),
  # where nothing was proposed.
  flags = np.array([0, 0, 1, 1, 0, 1, 0, 1], bool)
  raw = RawEpisode(observations=obs, actions=-np.ones((T, 1), np.float32), interventions=flags,
                   policy_actions=proposed, terminated=False, metadata={'episode_id': 'e'},
                   source='e')
  steps = rl.relabel(raw)[0].steps
  np.testing.assert_array_equal(steps['reward'][:T], [0, -1, 0, 0, -1, 0, -1])
  refused = pairing.refused_proposals(steps)
  # The states the penalised transitions 1 and 4 led to, with what the policy proposed there;
  # the penalty into step 7 has no proposal (the final observation).
  np.testing.assert_array_equal(refused['observation'][:, 0], [20, 50])
  np.testing.assert_allclose(refused['action'][:, 0], [0.2, 0.5])
  np.testing.assert_array_equal(refused['reward'], [-1, -1])
  np.testing.assert_array_equal(refused['discount'], [0, 0])
  np.testing.assert_array_equal(refused['is_intervention'], [False, False])
  assert np.isnan(refused['expert_action']).all()
  assert set(refused) == set(pairing.FIELDS)
  # Never something to imitate: the policy acted, in an intervention round.
  np.testing.assert_array_equal(pairing.demonstrated(refused, is_prior=False), [0, 0])
  # Without logged proposals there is nothing to add.
  no_log = rl.relabel(RawEpisode(observations=obs, actions=-np.ones((T, 1), np.float32),
                                 interventions=flags, policy_actions=None, terminated=False,
                                 metadata={'episode_id': 'e'}, source='e'))[0].steps
  assert pairing.size(pairing.refused_proposals(no_log)) == 0


def test_multi_step_sums_rewards_inside_each_episode_and_folds_gamma_into_the_discount():
  # Episode a: 4 transitions, truncated, takeovers at steps 2 and 4 (rewards -1 on transitions
  # 1 and 3); episode b: 2 transitions ending in a true terminal state.
  a = pairing.episode_transitions(rlds_steps(4, False, [False, False, True, False, True]))
  b = pairing.episode_transitions(rlds_steps(2, True, offset=100.0))
  np.testing.assert_array_equal(a['reward'], [0, -1, 0, -1])
  both = pairing.concatenate([a, b])
  out = pairing.multi_step(both, [4, 2], n=2, gamma=0.5)
  # By hand, m = min(2, steps left in the episode):
  #   a0: 0 + 0.5 * -1 = -0.5, discount 0.5, s' = s2;  a1: -1 + 0.5 * 0 = -1, 0.5, s3
  #   a2: 0 + 0.5 * -1 = -0.5, 0.5, s4;                a3 (last of a, m = 1): -1, 1, s4
  #   b0: 0 + 0, discount 0.5 * 0 (into the terminal state) = 0;  b1 (m = 1): 0, 0
  np.testing.assert_allclose(out['reward'], [-0.5, -1, -0.5, -1, 0, 0])
  np.testing.assert_allclose(out['discount'], [0.5, 0.5, 0.5, 1, 0, 0])
  np.testing.assert_array_equal(out['next_observation'][:, 0], [2, 3, 4, 4, 102, 102])
  # What the transition is stays the one-step one's.
  np.testing.assert_array_equal(out['observation'], both['observation'])
  np.testing.assert_array_equal(out['is_intervention'], both['is_intervention'])


def test_multi_step_with_a_window_past_every_episode_end_is_the_discounted_return():
  a = pairing.episode_transitions(rlds_steps(5, True, [False, True, False, False, True, False]))
  out = pairing.multi_step(a, [5], n=50, gamma=0.9)
  # Rewards -1 on transitions 0 and 3; the episode ends terminal, so nothing bootstraps.
  np.testing.assert_allclose(out['reward'], [-1 - 0.9 ** 3, -0.9 ** 2, -0.9, -1, 0], rtol=1e-6)
  np.testing.assert_array_equal(out['discount'], np.zeros(5))


def test_multi_step_of_one_is_the_data_and_bad_sizes_are_refused():
  a = pairing.episode_transitions(rlds_steps(3, False))
  assert pairing.multi_step(a, [3], n=1, gamma=0.99) is a
  with pytest.raises(ValueError, match='sum to 2, but there are 3'):
    pairing.multi_step(a, [2], n=3, gamma=0.99)
  with pytest.raises(ValueError, match='n >= 1'):
    pairing.multi_step(a, [3], n=0, gamma=0.99)


def test_accepted_leaves_out_the_window_before_each_takeover_inside_its_episode():
  # Episode a: 6 transitions; the human holds the controls at steps 3 and 4, so transition 2
  # (into step 3) carries the -1. Episode b: 3 policy transitions, no takeover.
  a = pairing.episode_transitions(
      rlds_steps(6, False, [False, False, False, True, True, False, False]))
  b = pairing.episode_transitions(rlds_steps(3, False, [False] * 4, offset=100.0))
  np.testing.assert_array_equal(a['reward'], [0, 0, -1, 0, 0, 0])
  both = pairing.concatenate([a, b])
  # Window 2: transitions 1 and 2 led into the takeover; 3 and 4 are the human's; a's last two
  # and all of b (a window never reaches from a into b) were let run.
  np.testing.assert_array_equal(pairing.accepted(both, [6, 3], window=2),
                                [1, 0, 0, 0, 0, 1, 1, 1, 1])
  # Window 1: only the penalised transition itself; window 10: all of a before the takeover.
  np.testing.assert_array_equal(pairing.accepted(both, [6, 3], window=1),
                                [1, 1, 0, 0, 0, 1, 1, 1, 1])
  np.testing.assert_array_equal(pairing.accepted(both, [6, 3], window=10),
                                [0, 0, 0, 0, 0, 1, 1, 1, 1])
  with pytest.raises(ValueError, match='window >= 1'):
    pairing.accepted(both, [6, 3], window=0)
  with pytest.raises(ValueError, match='sum to 8, but there are 9'):
    pairing.accepted(both, [6, 2], window=2)


def test_demonstrated_adds_the_accepted_policy_actions_in_intervention_rounds():
  transitions = {'reward': np.array([0, -1, 0, 0], np.float32),
                 'is_intervention': np.array([False, False, True, False]),
                 'accepted': np.array([True, False, False, True])}
  np.testing.assert_array_equal(pairing.demonstrated(transitions, is_prior=False), [1, 0, 1, 1])
  # Through an n-step sum the flags stay the one-step transitions'.
  both = dict(pairing.episode_transitions(rlds_steps(4, False, [False, False, True, False, False])))
  both['accepted'] = pairing.accepted(both, [4], window=1)
  summed = pairing.multi_step(both, [4], n=3, gamma=0.9)
  np.testing.assert_array_equal(pairing.demonstrated(summed, is_prior=False), [1, 0, 1, 1])


def test_operator_weight_weighs_the_human_steps_of_intervention_rounds_only():
  transitions = {'reward': np.array([0, -1, 0, 0, 0], np.float32),
                 'is_intervention': np.array([False, False, True, True, False]),
                 'accepted': np.array([True, False, False, False, True])}
  # The policy's accepted actions stay 1, the one that led to the takeover 0, the human's 10.
  np.testing.assert_array_equal(
      pairing.demonstrated(transitions, is_prior=False, operator_weight=10.0), [1, 0, 10, 10, 1])
  np.testing.assert_array_equal(
      pairing.demonstrated(transitions, is_prior=False, operator_weight=0.0), [1, 0, 0, 0, 1])
  # Prior data are demonstrations, weight 1, whatever their flags say.
  np.testing.assert_array_equal(
      pairing.demonstrated(transitions, is_prior=True, operator_weight=10.0), [1] * 5)
  with pytest.raises(ValueError, match='operator_weight must be >= 0'):
    pairing.demonstrated(transitions, is_prior=False, operator_weight=-1.0)
