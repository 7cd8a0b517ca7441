"""The deployed policy as a moving average of the actor's weights: the averaging rule by hand, who
acts with the average, when it moves, and that warm starts, checkpoints and exports carry it."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.trajectories import time_step as ts

from trainer import networks
from trainer import policy_average
from trainer import warm_start
from trainer.rlpd_agent import RlpdAgent
from trainer.supervised_agent import SupervisedAgent
from trainer.transition import Transition

OBS, ACT, BATCH = 4, 2, 32


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  f = lambda *shape: tf.constant(rng.normal(size=shape).astype(np.float32))
  return Transition(observation=f(BATCH, OBS), action=tf.tanh(f(BATCH, ACT)),
                    reward=-tf.abs(f(BATCH)), discount=tf.ones(BATCH),
                    next_observation=f(BATCH, OBS), demonstrated=tf.ones(BATCH))


def _weights(network):
  return [v.numpy().copy() for v in network.variables]


def _time_step(seed=1):
  rng = np.random.default_rng(seed)
  return ts.restart(tf.constant(rng.normal(size=(5, OBS)).astype(np.float32)), batch_size=5)


def _deployed(network, time_step):
  mean, _ = network.mean_and_log_std(time_step.observation)
  return np.tanh(mean.numpy())


def test_the_average_follows_the_rule_by_hand():
  time_step_spec, action_spec = networks.specs_from_dims(OBS, ACT)
  online = networks.TanhGaussianActorNetwork(time_step_spec.observation, action_spec, (3,),
                                             seed=0, name='Actor')
  average = policy_average.PolicyAverage(online, 0.75)
  assert average.network is not online
  start = _weights(online)
  for got, want in zip(_weights(average.network), start):
    np.testing.assert_array_equal(got, want)
  for v in online.variables:
    v.assign(v + 4.0)
  average.update()  # 0.75 * w + 0.25 * (w + 4) = w + 1
  for got, want in zip(_weights(average.network), start):
    np.testing.assert_allclose(got, want + 1.0, atol=1e-6)
  average.update()  # 0.75 * (w + 1) + 0.25 * (w + 4) = w + 1.75
  for got, want in zip(_weights(average.network), start):
    np.testing.assert_allclose(got, want + 1.75, atol=1e-6)
  average.reset()
  for got, want in zip(_weights(average.network), _weights(online)):
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('decay', [-0.1, 1.0, 1.5])
def test_a_decay_outside_0_to_1_is_refused(decay):
  with pytest.raises(ValueError, match=r'policy_average_decay must be in \[0, 1\)'):
    SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(3,), policy_average_decay=decay)


def test_without_an_average_the_policy_acts_with_the_trained_actor():
  agent = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=0)
  assert agent.deployed_actor_network is agent.actor_network
  agent.reset_policy_average()  # nothing to do


def test_a_supervised_agent_deploys_the_average_and_trains_the_actor():
  agent = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=0, loss='mae',
                                    policy_average_decay=0.9)
  twin = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=0, loss='mae')
  before = _weights(agent.actor_network)
  agent.train(_batch())
  twin.train(_batch())
  # The loss trains the actor exactly as without the average ...
  for got, want in zip(_weights(agent.actor_network), _weights(twin.actor_network)):
    np.testing.assert_allclose(got, want, atol=1e-6)
  # ... and the deployed weights moved a tenth of the way.
  for got, old, new in zip(_weights(agent.deployed_actor_network), before,
                           _weights(agent.actor_network)):
    np.testing.assert_allclose(got, 0.9 * old + 0.1 * new, atol=1e-6)
  time_step = _time_step()
  acted = agent.policy.action(time_step).action.numpy()
  np.testing.assert_allclose(acted, _deployed(agent.deployed_actor_network, time_step), atol=1e-5)
  assert np.abs(acted - _deployed(agent.actor_network, time_step)).max() > 1e-6


def test_an_rl_actor_average_waits_for_the_critic_warm_up():
  agent = RlpdAgent.from_dims(OBS, ACT, num_critics=2, critic_hidden=(8,), actor_hidden=(8,),
                              actor_update_after=1, bc_weight=0.4, seed=0,
                              policy_average_decay=0.5)
  start = _weights(agent.deployed_actor_network)
  agent.train(_batch(0))  # critics only: neither the actor nor its average moves
  for got, want in zip(_weights(agent.deployed_actor_network), start):
    np.testing.assert_array_equal(got, want)
  agent.train(_batch(1))
  moved = _weights(agent.actor_network)
  assert max(np.abs(m - s).max() for m, s in zip(moved, start)) > 1e-5
  for got, old, new in zip(_weights(agent.deployed_actor_network), start, moved):
    np.testing.assert_allclose(got, 0.5 * old + 0.5 * new, atol=1e-6)
  time_step = _time_step()
  np.testing.assert_allclose(agent.collect_policy.distribution(time_step).action.mode().numpy(),
                             _deployed(agent.deployed_actor_network, time_step), atol=1e-5)


def test_a_warm_start_copies_what_the_source_deploys_and_restarts_the_targets_average():
  source = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=0,
                                     policy_average_decay=0.9)
  for seed in range(3):
    source.train(_batch(seed))
  target = RlpdAgent.from_dims(OBS, ACT, num_critics=2, critic_hidden=(8,), actor_hidden=(8,),
                               seed=1, policy_average_decay=0.99)
  warm_start.copy_actor(source, target)
  deployed = _weights(source.deployed_actor_network)
  assert max(np.abs(d - a).max()
             for d, a in zip(deployed, _weights(source.actor_network))) > 1e-6
  for network in (target.actor_network, target.deployed_actor_network):
    for got, want in zip(_weights(network), deployed):
      np.testing.assert_array_equal(got, want)


def test_a_checkpoint_and_an_exported_policy_hold_the_average(tmp_path):
  agent = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=0,
                                    policy_average_decay=0.8)
  for seed in range(3):
    agent.train(_batch(seed))
  time_step = _time_step()
  expected = agent.policy.action(time_step).action.numpy()
  tf.train.Checkpoint(agent=agent).write(str(tmp_path / 'ckpt'))
  restored = SupervisedAgent.from_dims(OBS, ACT, actor_hidden=(8,), seed=5,
                                       policy_average_decay=0.8)
  tf.train.Checkpoint(agent=restored).read(str(tmp_path / 'ckpt')).assert_consumed()
  np.testing.assert_allclose(restored.policy.action(time_step).action.numpy(), expected,
                             atol=1e-6)
  for got, want in zip(_weights(restored.actor_network), _weights(agent.actor_network)):
    np.testing.assert_array_equal(got, want)
  saved = os.path.join(tmp_path, 'policy')
  policy_saver.PolicySaver(agent.policy, batch_size=None).save(saved)
  loaded = tf.saved_model.load(saved)
  np.testing.assert_allclose(loaded.action(time_step).action.numpy(), expected, atol=1e-5)
