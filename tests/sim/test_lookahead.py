import numpy as np
import pytest

from sim import collector
from sim import experts
from sim import intervention as iv
from sim import lookahead
from sim import tasks
from tests.sim import shared_files


@pytest.fixture(scope='module')
def pen_expert():
  return experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')


def _rollout(env, first_action, actor, horizon, gamma):
  """The lookahead by hand, in the episode's own environment."""
  total, action = 0.0, first_action
  for h in range(horizon):
    obs, reward, terminated, _, _ = env.step(np.clip(action, -1, 1))
    total += gamma ** h * reward
    if terminated or h == horizon - 1:
      break
    action = actor(obs)
  return total


def test_returns_are_the_rewards_the_episode_would_get(pen_expert):
  """From a mid-episode state: horizon 1 is the reward of that action; horizon 5 is the
  discounted reward of the action then the expert, stepped by hand in a copy of the episode."""
  env = tasks.make_env('pen', seed=0)
  obs, _ = env.reset(seed=3)
  for _ in range(7):
    obs, *_ = env.step(pen_expert.action(obs))
  state = lookahead.snapshot(env)
  rng = np.random.default_rng(1)
  actions = np.clip(pen_expert.action(obs) + 0.5 * rng.standard_normal((3, 24)), -1, 1)

  critic = lookahead.LookaheadCritic('pen', pen_expert, horizon=5, gamma=0.9)
  q = critic.q([state] * 3, actions)
  one_step = lookahead.LookaheadCritic('pen', pen_expert, horizon=1).q([state] * 3, actions)
  assert critic.steps == 15

  for j in range(3):
    replica = tasks.make_env('pen', seed=0)
    replica.reset(seed=3)
    lookahead.restore(replica, state)
    assert one_step[j] == _rollout(replica, actions[j], None, 1, 0.9)
    lookahead.restore(replica, state)
    assert q[j] == _rollout(replica, actions[j], pen_expert.action, 5, 0.9)
  assert len(set(np.round(q, 6))) == 3  # three different actions, three different values

  # Looking ahead leaves the episode alone: its next step is, to the bit, the step of the same
  # episode run without any lookahead.
  action = pen_expert.action(obs)
  after, reward, *_ = env.step(action)
  control = tasks.make_env('pen', seed=0)
  control_obs, _ = control.reset(seed=3)
  for _ in range(7):
    control_obs, *_ = control.step(pen_expert.action(control_obs))
  expected, expected_reward, *_ = control.step(action)
  np.testing.assert_array_equal(after, expected)
  assert reward == expected_reward


def test_compare_follows_each_choice_with_its_own_actor(pen_expert):
  """The expert's branch continues with the expert and the policy's with the policy: with the
  expert as the policy both agree; a policy that drops its actions to 0 after the first step
  does worse than following its action with the expert."""
  env = tasks.make_env('pen', seed=0)
  obs, _ = env.reset(seed=5)
  state = lookahead.snapshot(env)
  critic = lookahead.LookaheadCritic('pen', pen_expert, horizon=8)
  a = pen_expert.action(obs)[None]

  same_expert, same_policy = critic.compare([state], a, a, pen_expert.action)
  np.testing.assert_allclose(same_expert, same_policy, rtol=1e-9)

  limp = lambda o: np.zeros(24)
  q_expert, q_limp = critic.compare([state], a, a, limp)
  assert q_expert[0] == pytest.approx(same_expert[0], rel=1e-9)
  assert q_limp[0] != pytest.approx(q_expert[0], rel=1e-6)
  assert q_limp[0] == _rollout_from(state, a[0], lambda o: np.zeros(24), 8)

  class CameraPolicy:
    observation_fields = ('state', 'camera')
  with pytest.raises(ValueError, match='camera'):
    critic.compare([state], a, a, CameraPolicy())


def _rollout_from(state, action, actor, horizon):
  env = tasks.make_env('pen', seed=0)
  env.reset(seed=0)
  lookahead.restore(env, state)
  return _rollout(env, action, actor, horizon, 0.99)


@pytest.mark.parametrize('task', ['pen', 'door', 'hammer', 'relocate'])
def test_snapshot_restores_an_episode_to_the_bit(task):
  """Mid-episode under the expert, a snapshot restored into an environment reset elsewhere
  steps exactly as the episode does. Relocate's ball has been lifted by then: its own
  get_env_state/set_env_state put it back 29 cm off."""
  expert = experts.MlpExpert.load(shared_files.expert_path(task), task)
  env = tasks.make_env(task, seed=0)
  obs, _ = env.reset(seed=2)
  for _ in range(80):
    obs, *_ = env.step(expert.action(obs))
  if task == 'relocate':
    assert np.linalg.norm(env.unwrapped.data.qpos[30:33]) > 0.1  # the ball's slide joints
  state = lookahead.snapshot(env)
  other = tasks.make_env(task, seed=0)
  other.reset(seed=9)
  lookahead.restore(other, state)
  for _ in range(5):
    action = expert.action(obs)
    obs, reward, *_ = env.step(action)
    other_obs, other_reward, *_ = other.step(action)
    np.testing.assert_array_equal(other_obs, obs)
    assert other_reward == reward


def test_the_lookahead_continues_with_the_noise_free_expert(pen_expert):
  noisy = experts.NoisyExpert(pen_expert, 0.5)
  with pytest.raises(TypeError, match='DeterministicExpert'):
    lookahead.LookaheadCritic('pen', noisy, horizon=3)


class _Values:
  """Fixed values for `ForesightIntervention`'s rule: row j's (expert, policy) values."""

  def __init__(self, q_expert, q_policy):
    self.q_expert, self.q_policy, self.steps = np.asarray(q_expert), np.asarray(q_policy), 0
    self.calls = []

  def compare(self, states, expert_actions, policy_actions, policy):
    self.calls.append(list(states))
    self.steps += 2 * len(states)
    rows = [s['row'] for s in states]
    return self.q_expert[rows], self.q_policy[rows]


def test_foresight_rule_respects_the_sign_and_asks_for_the_free_rows_only():
  # Margin 1 - alpha = 0.1 of |Q_exp|: 10 vs 8.5 flags (1.5 > 1.0); 10 vs 9.5 does not;
  # -10 vs -11.5 flags (1.5 > 1.0) and -10 vs -10.5 does not, whatever the sign.
  values = _Values([10.0, 10.0, -10.0, -10.0], [8.5, 9.5, -11.5, -10.5])
  config = iv.ForesightConfig(alpha=0.9, beta=1.0, hold_steps=2)
  model = iv.make_model('foresight', seed=0, config=config, lookahead=values)
  states = [{'row': j} for j in range(4)]
  zeros = np.zeros((4, 3))
  with pytest.raises(ValueError, match='env_states'):
    model.decide_all(zeros, zeros, zeros)
  model.reset(4)
  first = model.decide_all(zeros, zeros, zeros, env_states=states, policy=lambda o: o)
  np.testing.assert_array_equal(first, [True, False, True, False])
  # Rows 0 and 2 are held for one more step: only rows 1 and 3 are looked ahead.
  model.decide_all(zeros, zeros, zeros, env_states=states, policy=lambda o: o)
  assert [s['row'] for s in values.calls[-1]] == [1, 3]
  assert model.counts == {'decisions': 6, 'takeovers': 2, 'flagged': 2,
                          'flagged_takeovers': 2, 'lookahead_steps': 12}


def test_foresight_round_in_the_simulator(tmp_path, pen_expert):
  """A real round: the collector hands the model each free episode's state and the policy; a
  policy that reverses the expert on about half the states is taken over, and every decision
  looked ahead 2 x horizon steps (no pen state is terminal)."""
  def shaky(obs):
    # Deterministic (the lookahead calls it too): the expert's action, reversed on about half
    # the states.
    action = pen_expert.action(obs)
    return -action if np.sin(1e3 * obs[0]) > 0 else action

  critic = lookahead.LookaheadCritic('pen', pen_expert, horizon=3)
  model = iv.make_model('foresight', seed=1, config=iv.ForesightConfig(alpha=0.97),
                        lookahead=critic)
  summary = collector.collect_round('pen', shaky, pen_expert, model, 2, str(tmp_path / 'raw'),
                                    seed=0, round_index=1, episode_length=20)
  decided = summary['intervention_decisions']
  assert decided['takeovers'] > 0 and decided['flagged_takeovers'] > 0
  assert decided['lookahead_steps'] == 2 * 3 * decided['decisions']
  assert 0 < summary['intervention_rate'] < 1
  # Two episodes, two choices each: four scratch simulators, released with the model.
  assert len(critic._envs) == 4
  model.close()
  assert critic._envs == []
