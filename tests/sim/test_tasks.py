import numpy as np
import pytest

from sim import experts
from sim import tasks
from tests.sim import shared_files

EXPECTED_DIMS = {'pen': (45, 24), 'door': (39, 28), 'hammer': (46, 26), 'relocate': (39, 30)}


@pytest.mark.parametrize('name', sorted(EXPECTED_DIMS))
def test_env_dims_match_task_and_expert(name):
  task = tasks.TASKS[name]
  assert (task.observation_dim, task.action_dim) == EXPECTED_DIMS[name]
  env = tasks.make_env(name, seed=0)
  try:
    obs, _ = env.reset(seed=1)
    assert obs.shape == (task.observation_dim,)
    assert env.action_space.shape == (task.action_dim,)
    assert env.spec.max_episode_steps == 200
  finally:
    env.close()
  expert = experts.MlpExpert.load(shared_files.expert_path(name), task)
  assert (expert.observation_dim, expert.action_dim) == EXPECTED_DIMS[name]


def test_episodes_are_truncated_at_200_steps_not_terminated():
  env = tasks.make_env('relocate', seed=0)
  zeros = np.zeros(env.action_space.shape)
  ends = [env.step(zeros)[2:4] for _ in range(200)]
  env.close()
  assert not any(terminated for terminated, _ in ends)
  assert [t for t, (_, truncated) in enumerate(ends) if truncated] == [199]


def test_pen_rule_is_the_final_step():
  rule = tasks.TASKS['pen'].is_success
  assert rule([False, False, True])
  assert not rule([True, True, True, False])  # reached the goal, then lost it
  assert not rule([])
  assert rule([False] * 199 + [True])


def test_d4rl_rule_needs_more_than_25_successful_steps():
  for name in ('door', 'hammer', 'relocate'):
    rule = tasks.TASKS[name].is_success
    assert not rule([True] * 25 + [False] * 175)
    assert rule([False] * 100 + [True] * 26 + [False] * 74)
    assert rule([True, False] * 26)  # the steps need not be consecutive
    assert not rule([False] * 200)


def test_unknown_task_is_named():
  with pytest.raises(KeyError, match='known'):
    tasks.get_task('spoon')
