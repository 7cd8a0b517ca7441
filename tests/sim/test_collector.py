import json
import os

import numpy as np
import pytest

from pipeline import round_job
from sim import collector
from sim import experts
from sim import intervention as iv
from tests.sim import shared_files

EPISODE_LENGTH = 30


@pytest.fixture(scope='module')
def pen_expert():
  return experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')


def wobbly_policy(expert, seed):
  """Close to the expert most of the time, uniformly random on ~30% of steps: the gating model
  then takes over now and then, not always."""
  rng = np.random.default_rng(seed)

  def policy(obs):
    if rng.random() < 0.3:
      return rng.uniform(-1, 1, size=expert.action_dim)
    return expert.action(obs) + 0.02 * rng.standard_normal(expert.action_dim)
  return policy


def read(path):
  with np.load(path, allow_pickle=False) as data:
    return {k: data[k] for k in data.files}


def test_round_on_pen_passes_the_pipeline(tmp_path, pen_expert):
  raw_dir, demo_dir = str(tmp_path / 'raw' / 'round_1'), str(tmp_path / 'raw' / 'round_0')
  demos = collector.expert_demonstrations('pen', pen_expert, 1, demo_dir, seed=4,
                                          episode_length=EPISODE_LENGTH)
  model = iv.GatingIntervention(iv.GatingConfig(threshold=5.0))
  summary = collector.collect_round('pen', wobbly_policy(pen_expert, 0), pen_expert, model, 2,
                                    raw_dir, seed=7, round_index=1,
                                    episode_length=EPISODE_LENGTH)
  assert summary['episodes'] == 2 and summary['steps'] == 2 * EPISODE_LENGTH
  names = sorted(os.listdir(raw_dir))
  assert names == ['pen-r1-s7-00000.npz', 'pen-r1-s7-00001.npz']

  takeover_starts, expert_steps, returns = 0, 0, []
  for name in names:
    episode = read(os.path.join(raw_dir, name))
    obs, actions, proposed = episode['observations'], episode['actions'], episode['policy_actions']
    flags = episode['interventions']
    assert obs.shape == (EPISODE_LENGTH + 1, 45) and actions.shape == (EPISODE_LENGTH, 24)
    assert proposed.shape == (EPISODE_LENGTH, 24) and flags.shape == (EPISODE_LENGTH,)
    assert flags.dtype == bool and not episode['terminated']
    # The controller's action is executed: the policy's when free, the expert's when held.
    np.testing.assert_array_equal(actions[~flags], proposed[~flags])
    expert_actions = np.clip(pen_expert.action(obs[:-1].astype(np.float64)), -1, 1)
    np.testing.assert_allclose(actions[flags], expert_actions[flags], atol=1e-4)
    assert np.abs(actions).max() <= 1.0
    metadata = json.loads(str(episode['metadata']))
    assert metadata['episode_id'] == name[:-4] and metadata['task'] == 'pen'
    assert metadata['round'] == 1 and metadata['seed'] == 7
    assert metadata['intervention_model']['name'] == 'gating'
    assert metadata['intervention_model']['config']['threshold'] == 5.0
    assert isinstance(metadata['success'], bool) and np.isfinite(metadata['return'])
    takeover_starts += int(np.sum(flags[1:] & ~flags[:-1]))
    expert_steps += int(flags.sum())
    returns.append(metadata['return'])
  assert takeover_starts > 0 and 0 < expert_steps < 2 * EPISODE_LENGTH  # a real mixture
  assert summary['intervention_rate'] == pytest.approx(expert_steps / (2 * EPISODE_LENGTH))
  assert summary['mean_return'] == pytest.approx(np.mean(returns))
  # The operator's decisions: one at every step the policy was free to act, and each takeover
  # decision starts a hold; gating has no random part, so it flagged exactly its takeovers.
  decided = summary['intervention_decisions']
  assert decided['decisions'] - decided['takeovers'] == 2 * EPISODE_LENGTH - expert_steps
  assert decided['takeovers'] >= takeover_starts > 0
  assert decided['flagged'] == decided['flagged_takeovers'] == decided['takeovers']

  demo = read(os.path.join(demo_dir, 'pen-demo-s4-00000.npz'))
  assert 'interventions' not in demo and 'policy_actions' not in demo
  out = str(tmp_path / 'datasets')
  round0 = round_job.run_round([os.path.join(demo_dir, '*.npz')], out, 'ds', 0, runner='plain')
  assert round0.report['episodes_written'] == 1 and round0.report['episodes_rejected'] == 0
  assert round0.report['demonstrations'] == 1 and round0.report['negative_rewards'] == 0
  assert demos['episodes'] == 1

  round1 = round_job.run_round([os.path.join(raw_dir, '*.npz')], out, 'ds', 1, runner='plain')
  report = round1.report
  assert report['episodes_written'] == 2 and report['episodes_rejected'] == 0, round1.summary
  assert report['transitions'] == 2 * EPISODE_LENGTH
  assert report['intervention_steps'] == expert_steps
  assert report['negative_rewards'] == takeover_starts
  assert report['steps_with_actions_outside_unit_box'] == 0


def test_same_seed_same_round(tmp_path, pen_expert):
  def collect(where):
    model = iv.RandomIntervention(iv.RandomConfig(0.5), seed=1)
    collector.collect_round('pen', wobbly_policy(pen_expert, 2), pen_expert, model, 1,
                            str(tmp_path / where), seed=3, round_index=2, episode_length=10)
    return read(str(tmp_path / where / 'pen-r2-s3-00000.npz'))

  a, b = collect('a'), collect('b')
  for key in ('observations', 'actions', 'policy_actions', 'interventions'):
    np.testing.assert_array_equal(a[key], b[key])


def test_load_saved_policy_calls_the_action_signature(tmp_path, pen_expert):
  import tensorflow as tf
  from tf_agents.networks import sequential
  from tf_agents.policies import actor_policy
  from tf_agents.policies import policy_saver
  from tf_agents.specs import tensor_spec
  from tf_agents.trajectories import time_step as ts

  observation_spec = tf.TensorSpec([45], tf.float32)
  action_spec = tensor_spec.BoundedTensorSpec([24], tf.float32, -1.0, 1.0)
  dense = tf.keras.layers.Dense(24, activation='tanh')
  network = sequential.Sequential([dense], input_spec=observation_spec)
  policy = actor_policy.ActorPolicy(ts.time_step_spec(observation_spec), action_spec, network)
  policy_saver.PolicySaver(policy, batch_size=None).save(str(tmp_path / 'policy'))

  loaded = collector.load_saved_policy(str(tmp_path / 'policy'))
  obs = np.random.default_rng(0).normal(size=45).astype(np.float32)
  kernel, bias = (v.numpy() for v in dense.weights)
  action = loaded(obs)
  assert action.shape == (24,)
  np.testing.assert_allclose(action, np.tanh(obs @ kernel + bias), atol=1e-5)

  summary = collector.collect_round(
      'pen', loaded, pen_expert, iv.GatingIntervention(), 1, str(tmp_path / 'raw'), seed=0,
      round_index=1, episode_length=5)
  assert summary['steps'] == 5


def test_episodes_side_by_side_equal_the_same_episodes_one_by_one(pen_expert):
  """run_together steps several environments with one batched call of the policy, the noisy
  expert and the reference critic per step; each episode is the one run_episode gives alone."""
  from sim import tasks

  def policy(obs):  # elementwise, so a batch gives bit for bit the rows' actions
    return np.tanh(2.0 * np.asarray(obs)[..., :24])
  policy.takes_batches = True
  batch_sizes = []

  def q_ref(obs, actions):  # the expert's action is rated better where obs[0] > 0
    batch_sizes.append(len(obs))
    return np.tanh(obs[:, 0]) * actions[:, 0] - 0.1 * np.abs(actions).sum(-1)

  noisy = experts.NoisyExpert(pen_expert, 0.3)  # its batched path (act_all), row by row
  seeds = [11, 12, 13, 14]

  def model():
    return iv.ValueBasedIntervention(q_ref, iv.ValueBasedConfig(alpha=0.9, beta=0.8), seed=5)

  alone_model = model()
  alone = [collector.run_episode(tasks.make_env('pen', 0, EPISODE_LENGTH), 'pen', noisy, policy,
                                 alone_model, s, EPISODE_LENGTH) for s in seeds]
  alone_calls = len(batch_sizes)
  batch_sizes.clear()
  envs = [tasks.make_env('pen', 0, EPISODE_LENGTH) for _ in seeds]
  together = collector.run_together(envs, 'pen', [collector.bound(noisy, e) for e in envs],
                                    seeds, policy, model(), EPISODE_LENGTH)
  assert max(batch_sizes) == 2 * len(seeds) and len(batch_sizes) < alone_calls
  for a, b in zip(alone, together):
    assert 0 < a.interventions.sum() < EPISODE_LENGTH
    for field in ('observations', 'actions', 'policy_actions', 'interventions', 'rewards',
                  'expert_actions', 'success_flags'):
      np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
  assert not np.allclose(together[0].observations, together[1].observations)
  # The MLP expert's batched path gives every row bit for bit its action alone (a batched
  # matmul would not: BLAS rounds its rows differently).
  obs = np.concatenate([e.observations for e in together]).astype(np.float64)
  np.testing.assert_array_equal(pen_expert.act_all(obs, None),
                                np.stack([pen_expert.act(o) for o in obs]))


def _assert_round_does_not_depend_on_the_batch(expert):
  """Round 0: the same demonstrations one at a time (one environment reused) and three side by
  side (one batched expert call per step), bit for bit."""
  noisy = experts.NoisyExpert(expert, 0.5)

  def round_of(together):
    return [e for _, e in collector.run_episodes('pen', noisy, 6, seed=1, together=together,
                                                 episode_length=EPISODE_LENGTH)]

  one, three = round_of(1), round_of(3)
  for a, b in zip(one, three):
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
  assert not np.array_equal(one[0].actions, one[1].actions)


def test_a_round_does_not_depend_on_how_many_episodes_run_together(pen_expert):
  _assert_round_does_not_depend_on_the_batch(pen_expert)  # the DAPG expert (../shared)


def test_a_round_of_the_project_expert_does_not_depend_on_the_batch():
  from sim import project_expert
  _assert_round_does_not_depend_on_the_batch(project_expert.project_expert('pen'))


def test_exploring_adds_seeded_gaussian_noise_to_every_proposal():
  def policy(observations):
    return np.asarray(observations)[:, :2] * 0.5
  policy.takes_batches = True
  policy.observation_fields = None
  noisy = collector.exploring(policy, 0.2, np.random.default_rng(4))
  observations = np.arange(12.0).reshape(3, 4)
  draws = np.random.default_rng(4).standard_normal((2, 3, 2))
  np.testing.assert_allclose(noisy(observations), policy(observations) + 0.2 * draws[0])
  np.testing.assert_allclose(noisy(observations), policy(observations) + 0.2 * draws[1])
  assert noisy.takes_batches and noisy.observation_fields is None
