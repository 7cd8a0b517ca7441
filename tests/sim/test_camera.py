"""Cameras in simulation: Adroit rendered off-screen (MuJoCo on EGL), logged by the collector as
raw format v2, and written by the pipeline into RLDS steps that hold the frames."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pipeline import round_job
from pipeline import schema as sc
from sim import collector
from sim import experts
from sim import intervention as iv
from sim import tasks
from tests.sim import rendering
from tests.sim import shared_files

EPISODE_LENGTH = 30
SIZE = (32, 32)


@pytest.fixture(scope='module', autouse=True)
def off_screen_rendering():
  rendering.skip_without_off_screen_rendering()


@pytest.fixture(scope='module')
def pen_expert():
  return experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')


def test_camera_renders_the_state_the_env_reaches():
  env = tasks.make_env('pen', seed=0, episode_length=3, camera=SIZE)
  try:
    obs, info = env.reset(seed=5)
    assert obs.shape == (45,)  # observations stay the state vector
    first = info[tasks.CAMERA_INFO_KEY]
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert first.std() > 10  # the hand and the table, not a blank frame
    np.testing.assert_array_equal(env.camera.render(), first)  # rendering changes nothing
    for _ in range(3):
      _, _, _, truncated, info = env.step(np.ones(24))
    assert truncated
    assert np.abs(info[tasks.CAMERA_INFO_KEY].astype(int) - first).max() > 0  # the hand moved
  finally:
    env.close()
  with pytest.raises(ValueError, match="camera 'nope' is not in the model"):
    tasks.make_env('pen', 0, 3, camera=tasks.CameraSpec(32, 32, 'nope'))


def float32(action):
  """Actions the float32 log holds exactly, so that replaying the logged actions reaches the
  very states the collector rendered."""
  return np.asarray(action, np.float32).astype(np.float64)


class Float32Expert:
  def __init__(self, expert):
    self._expert = expert

  def act(self, obs, rng):
    return float32(self._expert.act(obs, rng))


def wobbly_policy(expert, seed):
  """Takes the state vector (as the collector gives it, camera or not); random on ~30% of
  steps, so the gating model takes over now and then."""
  rng = np.random.default_rng(seed)

  def policy(obs):
    assert np.shape(obs) == (45,)
    if rng.random() < 0.3:
      return float32(rng.uniform(-1, 1, size=expert.action_dim))
    return float32(expert.action(obs) + 0.02 * rng.standard_normal(expert.action_dim))
  return policy


def test_a_pen_round_with_a_camera_reaches_the_dataset_with_its_frames(tmp_path, pen_expert):
  raw_dir, seed, round_index = str(tmp_path / 'raw'), 7, 1
  model = iv.GatingIntervention(iv.GatingConfig(threshold=5.0))
  summary = collector.collect_round('pen', wobbly_policy(pen_expert, 0),
                                    Float32Expert(pen_expert), model, 2,
                                    raw_dir, seed=seed, round_index=round_index,
                                    episode_length=EPISODE_LENGTH, camera=SIZE)
  assert summary['episodes'] == 2 and summary['takeovers'] > 0
  with np.load(summary['paths'][0], allow_pickle=False) as raw:
    assert 'observations' not in raw.files
    assert raw['observations/state'].shape == (EPISODE_LENGTH + 1, 45)
    assert raw['observations/camera'].shape == (EPISODE_LENGTH + 1, 32, 32, 3)
    assert raw['observations/camera'].dtype == np.uint8
    assert json.loads(str(raw['metadata']))['camera'] == {'height': 32, 'width': 32,
                                                           'name': 'fixed'}

  out = str(tmp_path / 'datasets')
  result = round_job.run_round([os.path.join(raw_dir, '*.npz')], out, 'pen_cam', round_index,
                               runner='plain')
  report = result.report
  assert report['episodes_written'] == 2 and report['episodes_rejected'] == 0, result.summary
  assert report['transitions'] == 2 * EPISODE_LENGTH
  assert report['negative_rewards'] == summary['takeovers'] - sum(  # a takeover at step 0
      1 for p in summary['paths'] if np.load(p)['interventions'][0])  # has no -1
  builder = tfds.builder_from_directory(result.version_dir)
  assert isinstance(builder.info.features[sc.STEPS].feature[sc.OBSERVATION]['camera'],
                    tfds.features.Image)
  stored = {e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode(): list(e[sc.STEPS])
            for e in tfds.as_numpy(builder.as_dataset(split=sc.split_name(round_index)))}
  assert sorted(stored) == ['pen-r1-s7-00000', 'pen-r1-s7-00001']

  for index, (episode_id, steps) in enumerate(sorted(stored.items())):
    frames = np.stack([s[sc.OBSERVATION]['camera'] for s in steps])
    states = np.stack([s[sc.OBSERVATION]['state'] for s in steps])
    actions = np.stack([s[sc.ACTION] for s in steps])[:-1]
    assert frames.shape == (EPISODE_LENGTH + 1, 32, 32, 3)
    assert frames.reshape(len(frames), -1).std(axis=1).min() > 10  # no blank frame
    assert np.abs(np.diff(frames.astype(int), axis=0)).max() > 0  # the hand moves
    # The renderer, replaying the logged actions from the same initial state, gives the same
    # states and the same frames as the dataset holds.
    env = tasks.make_env('pen', seed, EPISODE_LENGTH, camera=SIZE)
    try:
      obs, info = env.reset(seed=collector.episode_seed(seed, round_index, index))
      replayed = [info[tasks.CAMERA_INFO_KEY]]
      np.testing.assert_array_equal(obs.astype(np.float32), states[0])
      for t, action in enumerate(actions):
        obs, _, _, _, info = env.step(action.astype(np.float64))
        replayed.append(info[tasks.CAMERA_INFO_KEY])
        np.testing.assert_array_equal(obs.astype(np.float32), states[t + 1])
    finally:
      env.close()
    np.testing.assert_array_equal(np.stack(replayed), frames)


def test_without_a_camera_episodes_are_as_before(pen_expert):
  (_, episode), = collector.run_episodes('pen', pen_expert, 1, seed=3, episode_length=4)
  assert isinstance(episode.observations, np.ndarray) and episode.observations.shape == (5, 45)
  np.testing.assert_array_equal(episode.states, episode.observations)
