"""SupervisedAgent: the imitation losses by hand, what trains what, learning a known mapping,
export."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.trajectories import time_step as ts

from tests.trainer.test_networks import np_actor_mean_log_std
from trainer import networks
from trainer.supervised_agent import METRIC_NAMES
from trainer.supervised_agent import SupervisedAgent
from trainer.transition import Transition

OBS_DIM, ACT_DIM = 3, 2


def make_agent(**kwargs):
  settings = dict(actor_hidden=(8,), seed=0, use_xla=False)
  settings.update(kwargs)
  return SupervisedAgent.from_dims(OBS_DIM, ACT_DIM, **settings)


def make_batch(size, seed=0, action=None):
  rng = np.random.default_rng(seed)
  observation = rng.normal(size=(size, OBS_DIM)).astype(np.float32)
  if action is None:
    action = rng.uniform(-0.9, 0.9, size=(size, ACT_DIM))
  return Transition(
      observation=tf.constant(observation),
      action=tf.constant(np.asarray(action, np.float32)),
      reward=tf.constant(rng.normal(size=size).astype(np.float32)),
      discount=tf.ones([size]),
      next_observation=tf.constant(rng.normal(size=(size, OBS_DIM)).astype(np.float32)),
      demonstrated=tf.ones([size]))


def np_bc_loss(agent, observation, action, entropy_coefficient):
  mean, log_std = np_actor_mean_log_std(agent.actor_network, observation)
  action = np.clip(action.astype(np.float64), -networks.ACTION_CLIP, networks.ACTION_CLIP)
  pre_tanh = np.arctanh(action)
  noise = (pre_tanh - mean) / np.exp(log_std)
  log_prob = (-0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)
              - np.log(1.0 - action ** 2)).sum(-1)
  return -log_prob.mean() - entropy_coefficient * log_std.sum(-1).mean()


@pytest.mark.parametrize('entropy_coefficient', [0.0, 0.1])
def test_likelihood_loss_is_negative_log_likelihood_minus_entropy_bonus(entropy_coefficient):
  agent = make_agent(loss='likelihood', entropy_coefficient=entropy_coefficient)
  batch = make_batch(6)
  np.testing.assert_allclose(
      agent.bc_loss(batch.observation, batch.action).numpy(),
      np_bc_loss(agent, batch.observation.numpy(), batch.action.numpy(), entropy_coefficient),
      rtol=1e-4)


def test_mse_loss_is_the_squared_error_of_the_deployed_action_plus_the_spread_fit():
  agent = make_agent(entropy_coefficient=0.1)  # 'mse' is the default
  batch = make_batch(6)
  observation, action = batch.observation.numpy(), batch.action.numpy()
  mean, _ = np_actor_mean_log_std(agent.actor_network, observation)
  squared_error = ((np.tanh(mean) - action) ** 2).sum(-1).mean()
  np.testing.assert_allclose(agent.bc_loss(batch.observation, batch.action).numpy(),
                             squared_error + np_bc_loss(agent, observation, action, 0.1),
                             rtol=1e-4)


def test_mae_loss_is_the_absolute_error_of_the_deployed_action_plus_the_spread_fit():
  agent = make_agent(loss='mae', entropy_coefficient=0.1)
  batch = make_batch(6)
  observation, action = batch.observation.numpy(), batch.action.numpy()
  mean, _ = np_actor_mean_log_std(agent.actor_network, observation)
  absolute_error = np.abs(np.tanh(mean) - action).sum(-1).mean()
  np.testing.assert_allclose(agent.bc_loss(batch.observation, batch.action).numpy(),
                             absolute_error + np_bc_loss(agent, observation, action, 0.1),
                             rtol=1e-4)


def test_mae_fits_the_median_of_the_logged_actions_where_mse_fits_their_mean():
  """One observation logged with actions 0.8, 0.8, 0.8, -1, -1 in dimension 0: the median is 0.8,
  the mean 0.08. Each loss, trained to convergence, deploys its own statistic."""
  observation = np.ones((5, OBS_DIM), np.float32)
  action = np.array([[0.8, 0.0]] * 3 + [[-1.0, 0.0]] * 2, np.float32)
  batch = make_batch(5, action=action)._replace(observation=tf.constant(observation))
  deployed = {}
  for loss in ('mse', 'mae'):
    agent = make_agent(actor_hidden=(16,), learning_rate=1e-2, loss=loss)
    for _ in range(400):
      agent.train(batch)
    deployed[loss] = agent.policy.action(
        ts.restart(batch.observation[:1], batch_size=1)).action.numpy()[0, 0]
  assert abs(deployed['mae'] - 0.8) < 0.05
  assert abs(deployed['mse'] - 0.08) < 0.05


def test_with_mse_the_spread_fit_trains_only_the_log_std_outputs():
  """The mean's layers get exactly the squared error's gradient; the likelihood term reaches only
  the head's log-std half (the head's kernel is [hidden, 2A]: mean columns, then log-std)."""
  agent = make_agent(entropy_coefficient=0.1)
  actor = agent.actor_network
  batch = make_batch(16)
  variables = actor.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    total = agent.bc_loss(batch.observation, batch.action)
    mean, _ = actor.mean_and_log_std(batch.observation)
    squared_error = tf.reduce_mean(tf.reduce_sum(tf.square(tf.tanh(mean) - batch.action), -1))
  got = dict(zip([v.name for v in variables], tape.gradient(total, variables)))
  want = dict(zip([v.name for v in variables], tape.gradient(squared_error, variables)))
  for name in got:
    g, w = got[name].numpy(), want[name].numpy()
    if 'head' in name:  # kernel [H, 2A] or bias [2A]
      np.testing.assert_allclose(g[..., :ACT_DIM], w[..., :ACT_DIM], rtol=1e-5, atol=1e-7)
      assert np.all(w[..., ACT_DIM:] == 0) and np.any(np.abs(g[..., ACT_DIM:]) > 1e-4)
    else:
      np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_an_unknown_loss_is_refused():
  with pytest.raises(ValueError, match="loss must be one of .*'huber'"):
    make_agent(loss='huber')


@pytest.mark.parametrize('loss', ['mse', 'mae', 'likelihood'])
def test_actions_on_the_bounds_are_clipped_before_atanh(loss):
  agent = make_agent(loss=loss)
  batch = make_batch(4, action=[[1.0, -1.0], [0.5, 1.0], [-1.0, 0.0], [0.0, 0.0]])
  loss = agent.bc_loss(batch.observation, batch.action).numpy()
  assert np.isfinite(loss)
  np.testing.assert_allclose(loss, agent.bc_loss(
      batch.observation, tf.clip_by_value(batch.action, -1 + 1e-6, 1 - 1e-6)).numpy(), rtol=1e-6)


def test_only_observation_and_action_matter():
  agent = make_agent()
  batch = make_batch(6)
  changed = batch._replace(reward=batch.reward + 5.0, discount=tf.zeros([6]),
                           next_observation=batch.next_observation * 3.0)
  np.testing.assert_allclose(agent.loss(batch).loss.numpy(), agent.loss(changed).loss.numpy())


@pytest.mark.parametrize('use_xla,loss', [(False, 'mse'), (True, 'mse'), (False, 'mae'),
                                           (False, 'likelihood')])
def test_learns_a_known_mapping(use_xla, loss):
  agent = make_agent(actor_hidden=(32,), learning_rate=1e-2, use_xla=use_xla, loss=loss)
  rng = np.random.default_rng(1)
  observation = rng.normal(size=(128, OBS_DIM)).astype(np.float32)
  action = np.tanh(observation @ rng.normal(size=(OBS_DIM, ACT_DIM)) * 0.5)
  batch = make_batch(128, action=action)._replace(observation=tf.constant(observation))
  first = agent.train(batch)
  for _ in range(200):
    last = agent.train(batch)
  assert set(last.extra) == set(METRIC_NAMES)
  assert float(last.extra['action_mse']) < 0.1 * float(first.extra['action_mse'])
  assert float(last.extra['action_mse']) < 0.01
  assert agent.optimizer.iterations.numpy() == 201
  assert agent.train_step_counter.numpy() == 201
  deployed = agent.policy.action(ts.restart(batch.observation, batch_size=128)).action.numpy()
  np.testing.assert_allclose(deployed, action, atol=0.3)


def test_policy_saver_round_trip(tmp_path):
  agent = make_agent()
  observation = make_batch(3).observation
  time_step = ts.restart(observation, batch_size=3)
  expected = np.tanh(np_actor_mean_log_std(agent.actor_network, observation.numpy())[0])
  policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(tmp_path / 'policy'))
  loaded = tf.saved_model.load(str(tmp_path / 'policy'))
  np.testing.assert_allclose(loaded.action(time_step).action.numpy(), expected, atol=1e-5)


def test_with_images_the_loss_trains_the_encoder_on_shifted_frames_and_learns():
  """Behaviour cloning from pixels: the action is a function of where a bright square is in the
  image; the encoder (trained by this loss, there is no critic) has to find it."""
  from pipeline import schema as sc
  spec = (sc.ObservationField('camera', (10, 10, 1)), sc.ObservationField('state', (1,)))
  agent = SupervisedAgent.from_dims(
      spec, 1, actor_hidden=(16,), seed=0, learning_rate=3e-3,
      encoder={'filters': 4, 'strides': [1], 'features': 8, 'image_shift': 1})
  rng = np.random.default_rng(0)
  column = rng.integers(1, 9, 64)
  camera = np.zeros((64, 10, 10, 1), np.uint8)
  camera[np.arange(64), 3:7, column] = 255
  observation = {'camera': tf.constant(camera), 'state': tf.zeros([64, 1])}
  action = (column[:, None] - 4.5) / 5.0  # left of centre: negative
  batch = make_batch(64)._replace(observation=observation, next_observation=observation,
                                  action=tf.constant(action, tf.float32))
  encoder_before = [v.numpy() for v in agent.encoder.variables]
  first = float(agent.train(batch).extra['action_mse'])
  for _ in range(150):
    last = agent.train(batch).extra
  assert all(not np.array_equal(v.numpy(), b)
             for v, b in zip(agent.encoder.variables, encoder_before))
  assert float(last['action_mse']) < 0.2 * first
  deployed = agent.policy.action(ts.restart(observation, batch_size=64)).action.numpy()
  assert np.corrcoef(deployed[:, 0], action[:, 0])[0, 1] > 0.9
