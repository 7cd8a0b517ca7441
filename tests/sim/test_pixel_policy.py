"""The pixel learner end to end: camera episodes collected in simulation -> raw logs (format v2)
-> the pipeline -> the trainer (the RLIF recipe, small) -> an exported policy that acts on the
frames the simulator renders, with the same camera, in the collector and the evaluator."""

import os

import numpy as np
import pytest

from pipeline import round_job
from sim import collector
from sim import experts
from sim import intervention as iv
from sim import loop as loop_lib
from sim import tasks
from tests.sim import rendering
from tests.sim import shared_files

EPISODE_LENGTH = 8
SIZE = (32, 32)


@pytest.fixture(scope='module', autouse=True)
def off_screen_rendering():
  rendering.skip_without_off_screen_rendering()


def noisy_state_policy(expert, seed):
  """A round-1 policy on the state vector (the collector's usual policy), off the expert's
  actions so that the operator takes over now and then."""
  rng = np.random.default_rng(seed)

  def policy(obs):
    assert np.shape(obs) == (45,)
    return expert.action(obs) + 0.5 * rng.standard_normal(expert.action_dim)
  return policy


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A two-round pen dataset with a 32x32 camera and a policy trained on it; (policy folder,
  data dir, dataset)."""
  from trainer import learners
  from trainer import train_loop
  root = tmp_path_factory.mktemp('pixels')
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')
  data_dir, raw = str(root / 'data'), str(root / 'raw')
  demos = collector.expert_demonstrations('pen', expert, 2, os.path.join(raw, 'round_0'), seed=3,
                                          episode_length=EPISODE_LENGTH, camera=SIZE)
  model = iv.RandomIntervention(iv.RandomConfig(expert_fraction=0.4, hold_steps=2), seed=1)
  interventions = collector.collect_round(
      'pen', noisy_state_policy(expert, 0), expert, model, 2, os.path.join(raw, 'round_1'),
      seed=3, round_index=1, episode_length=EPISODE_LENGTH, camera=SIZE)
  assert demos['episodes'] == interventions['episodes'] == 2
  assert interventions['takeovers'] > 0
  for r in (0, 1):
    result = round_job.run_round([os.path.join(raw, f'round_{r}', '*.npz')], data_dir,
                                 'pen_cam', r, runner='plain')
    assert result.report['episodes_written'] == 2, result.summary
  settings = learners.load_settings('rlif', overrides={
      'num_critics': 3, 'critic_hidden': [32, 32], 'actor_hidden': [32, 32],
      'actor_warm_start': 5, 'actor_update_after': 2,
      'encoder': {'filters': 8, 'strides': [2, 1], 'features': 16}})
  config = train_loop.LoopConfig(learner='rlif', batch_size=16, num_steps=6, progress=False)
  trainer = train_loop.TrainLoop(config, settings, data_dir, 'pen_cam', str(root / 'run'),
                                 log=lambda _: None)
  result = trainer.run()
  assert result['step'] == 6 and result['exported'] == [1]
  assert result['rounds'][1]['negative_rewards'] > 0
  return str(root / 'run' / 'policies' / 'round_1'), trainer.data


def test_the_exported_policy_acts_on_a_freshly_rendered_observation(trained):
  policy_dir, _ = trained
  policy = collector.load_saved_policy(policy_dir)
  fields = policy.observation_fields
  assert sorted(fields) == ['camera', 'state']
  assert tuple(fields['camera'].shape) == (32, 32, 3) and fields['camera'].dtype.name == 'uint8'
  assert tuple(fields['state'].shape) == (45,) and fields['state'].dtype.name == 'float32'
  assert collector.policy_camera(policy) == SIZE

  env = tasks.make_env('pen', seed=0, camera=SIZE)
  try:
    obs, info = env.reset(seed=11)
    frame = info[tasks.CAMERA_INFO_KEY]
    action = policy({'state': obs, 'camera': frame})
    assert action.shape == (24,) and action.dtype == np.float32
    assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)
    # The same state with another image: the action moves, so the policy looks at the image.
    for _ in range(5):
      _, _, _, _, info = env.step(np.ones(24))
    moved_frame = info[tasks.CAMERA_INFO_KEY]
    assert np.abs(moved_frame.astype(int) - frame).max() > 0
    moved = policy({'state': obs, 'camera': moved_frame})
    assert np.abs(moved - action).max() > 1e-4
    inverted = policy({'state': obs, 'camera': 255 - frame})
    assert np.abs(inverted - action).max() > 1e-4
    # A batch of observations gives the rows' actions.
    batch = policy({'state': np.stack([obs, obs]), 'camera': np.stack([frame, moved_frame])})
    np.testing.assert_allclose(batch, np.stack([action, moved]), atol=1e-6)
  finally:
    env.close()


def test_the_collector_and_the_evaluator_feed_it_the_frames(trained, tmp_path):
  policy_dir, data = trained
  policy = collector.load_saved_policy(policy_dir)
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')
  model = iv.RandomIntervention(iv.RandomConfig(expert_fraction=0.3, hold_steps=2), seed=2)
  summary = collector.collect_round('pen', policy, expert, model, 2, str(tmp_path / 'round_2'),
                                    seed=3, round_index=2, episode_length=4, camera=SIZE)
  with np.load(summary['paths'][0], allow_pickle=False) as raw:
    proposed, frames = raw['policy_actions'], raw['observations/camera']
    states = raw['observations/state']
  # The logged proposals are the policy's actions on the logged (state, frame) of each step.
  np.testing.assert_allclose(
      proposed, np.clip(policy({'state': states[:-1], 'camera': frames[:-1]}), -1, 1), atol=1e-5)

  result = loop_lib.evaluate_exported_policy(
      policy_dir, episodes=1, seed=0, observation_dim=data.observation_spec,
      action_dim=data.action_dim, task='pen', episode_length=3)
  assert result['task'] == 'pen' and result['episodes'] == 1
  assert np.isfinite(result['mean_return'])
  # Without a camera there is nothing to feed it.
  with pytest.raises(ValueError, match=r'the policy takes camera images: .*camera=\(32, 32\)'):
    list(collector.run_episodes('pen', expert, 1, 0, episode_length=2, policy=policy,
                                intervention_model=model))
