import json
import os

import numpy as np
import pytest

from pipeline import round_job
from sim import human_demos
from sim import tasks
from tests.sim import shared_files


@pytest.fixture(scope='module')
def demo_file():
  if not os.path.exists(shared_files.DEMO_FILE):
    pytest.skip(f'shared demo file {shared_files.DEMO_FILE} is absent '
                '(see /work/shared/demos/README.md)')
  return shared_files.DEMO_FILE


def test_last_action_is_dropped_so_the_last_observation_is_final():
  demo = human_demos.HumanDemo(0, np.arange(8.0).reshape(4, 2), np.arange(12.0).reshape(4, 3),
                               np.zeros(4), {})
  observations, actions = human_demos.demo_episode(demo)
  np.testing.assert_array_equal(observations, demo.observations)
  np.testing.assert_array_equal(actions, demo.actions[:3])


def test_converted_demos_pass_the_pipeline(tmp_path, demo_file):
  paths = human_demos.convert(demo_file, str(tmp_path / 'raw'))
  assert len(paths) == 25
  with np.load(paths[0], allow_pickle=False) as first:
    assert first['observations'].shape == (300, 39) and first['actions'].shape == (299, 28)
    assert 'interventions' not in first.files
    metadata = json.loads(str(first['metadata']))
  assert metadata['episode_id'] == 'door-human-00' and metadata['dropped_last_action']

  result = round_job.run_round([str(tmp_path / 'raw' / '*.npz')], str(tmp_path / 'out'), 'ds', 0,
                               runner='plain')
  report = result.report
  assert report['episodes_written'] == 25 and report['episodes_rejected'] == 0, result.summary
  assert report['transitions'] == 6729 - 25
  assert report['demonstrations'] == 25 and report['negative_rewards'] == 0
  assert report['steps_with_actions_outside_unit_box'] > 0
  assert (report['observation_dim'], report['action_dim']) == (39, 28)


def test_replay_from_recorded_initial_state_is_close_but_not_exact(demo_file):
  demo = human_demos.load_demos(demo_file)[2]
  env = tasks.make_env('door', 0)
  try:
    replay = human_demos.replay(env, demo, 60)
  finally:
    env.close()
  errors = replay['max_abs_error']
  assert errors.shape == (61,)
  # The recorded first observation has the arm already moved; the stored initial qpos does not.
  assert errors[0] > 0.1 and np.all(replay['initial_error'][5:29] < 1e-3)
  # Position control pulls the hand onto the recorded trajectory within a few dozen steps.
  assert np.median(errors[40:]) < 0.1
