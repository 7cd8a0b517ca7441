"""RlpdAgent: losses against numpy on tiny networks, update counts, Polyak, learning, export."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from pipeline import schema as sc
from tests.trainer.test_networks import np_actor_mean_log_std
from tests.trainer.test_networks import np_critic
from tests.trainer.test_networks import np_tanh_gaussian
from tests.trainer.test_networks import randomize
from trainer import networks
from trainer.rlpd_agent import METRIC_NAMES
from trainer.rlpd_agent import RlpdAgent
from trainer.transition import Transition

OBS_DIM, ACT_DIM = 3, 2
SEED = tf.constant([7, 11])


def make_agent(**kwargs):
  settings = dict(num_critics=3, num_min_critics=2, critic_hidden=(4,), actor_hidden=(4,),
                  seed=0, use_xla=False)
  settings.update(kwargs)
  return RlpdAgent.from_dims(OBS_DIM, ACT_DIM, **settings)


def make_batch(size, seed=0, reward=None, discount=None, demonstrated=None):
  rng = np.random.default_rng(seed)

  def f32(x):
    return tf.constant(np.asarray(x, np.float32))

  return Transition(
      observation=f32(rng.normal(size=(size, OBS_DIM))),
      action=f32(rng.uniform(-0.9, 0.9, size=(size, ACT_DIM))),
      reward=f32(rng.normal(size=size) if reward is None else np.full(size, reward)),
      discount=f32(rng.integers(0, 2, size=size) if discount is None else np.full(size, discount)),
      next_observation=f32(rng.normal(size=(size, OBS_DIM))),
      demonstrated=f32(rng.integers(0, 2, size=size) if demonstrated is None
                       else np.broadcast_to(demonstrated, (size,))))


def np_policy_sample(agent, observation, seed):
  """a ~ pi(.|s) and log pi(a|s) with the noise the agent draws for `seed`."""
  mean, log_std = np_actor_mean_log_std(agent.actor_network, observation)
  noise = tf.random.stateless_normal(mean.shape, seed).numpy()
  return np_tanh_gaussian(mean, log_std, noise)


def np_td_target(agent, batch, members, gamma=0.99, alpha=None, reward_scale=1.0):
  next_obs = batch.next_observation.numpy()
  next_action, next_log_prob = np_policy_sample(agent, next_obs, SEED)
  next_q = np_critic(agent.target_critic_network, next_obs, next_action)[members].min(0)
  if alpha is not None:  # backup_entropy
    next_q = next_q - alpha * next_log_prob
  return reward_scale * batch.reward.numpy() + gamma * batch.discount.numpy() * next_q


def np_critic_loss(agent, batch, target):
  q = np_critic(agent.critic_network, batch.observation.numpy(), batch.action.numpy())
  return np.mean((q - target[None]) ** 2)  # No 1/2 factor.


@pytest.fixture
def agent():
  agent = make_agent()
  randomize(agent.critic_network, seed=1)  # Online and target critics now differ.
  return agent


def test_agent_consumes_transitions_and_checks_specs():
  agent = make_agent()
  spec = agent.training_data_spec
  assert isinstance(spec, Transition)
  assert spec.observation.shape == (OBS_DIM,) and spec.next_observation.shape == (OBS_DIM,)
  assert spec.action.shape == (ACT_DIM,) and spec.reward.shape == () and spec.discount.shape == ()
  assert agent.train_sequence_length is None
  time_step_spec, _ = networks.specs_from_dims(OBS_DIM, ACT_DIM)
  wide = tensor_spec.BoundedTensorSpec([ACT_DIM], tf.float32, minimum=-2.0, maximum=2.0)
  with pytest.raises(ValueError, match='bounds'):
    RlpdAgent(time_step_spec, wide)
  with pytest.raises(ValueError, match='num_min_critics'):
    make_agent(num_min_critics=4)


def test_loss_does_not_update(agent):
  before = [v.numpy() for v in agent.trainable_variables]
  loss_info = agent.loss(make_batch(6))
  assert np.isfinite(loss_info.loss.numpy())
  for old, new in zip(before, agent.trainable_variables):
    np.testing.assert_array_equal(old, new.numpy())
  assert agent.critic_optimizer.iterations.numpy() == 0


def test_critic_loss_uses_min_over_chosen_target_subset(agent):
  batch = make_batch(5)
  members = [0, 2]
  loss = agent.critic_loss(batch, target_members=tf.constant(members), seed=SEED)
  expected = np_critic_loss(agent, batch, np_td_target(agent, batch, members))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  other = np_critic_loss(agent, batch, np_td_target(agent, batch, [1, 2]))
  assert abs(other - expected) > 1e-3  # The subset matters.


def test_critic_loss_discount_zero_ignores_next_state_and_one_bootstraps(agent):
  terminal = make_batch(5, discount=0.0)
  loss = agent.critic_loss(terminal, target_members=tf.constant([0, 1]), seed=SEED)
  np.testing.assert_allclose(loss.numpy(), np_critic_loss(agent, terminal, terminal.reward.numpy()),
                             rtol=1e-5)
  continuing = make_batch(5, discount=1.0)
  loss = agent.critic_loss(continuing, target_members=tf.constant([0, 1]), seed=SEED)
  expected = np_critic_loss(agent, continuing, np_td_target(agent, continuing, [0, 1]))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  assert abs(expected - np_critic_loss(agent, continuing, continuing.reward.numpy())) > 1e-3


def test_critic_target_is_min_over_all_critics_when_m_equals_e():
  agent = make_agent(num_min_critics=3, gamma=0.9)
  randomize(agent.critic_network, seed=1)
  batch = make_batch(5, discount=1.0)
  loss = agent.critic_loss(batch, seed=SEED)  # Subset drawn, but it is all three critics.
  expected = np_critic_loss(agent, batch, np_td_target(agent, batch, [0, 1, 2], gamma=0.9))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_backup_entropy_subtracts_alpha_log_pi_in_target():
  agent = make_agent(backup_entropy=True)
  randomize(agent.critic_network, seed=1)
  agent.log_alpha.assign(math.log(0.5))
  batch = make_batch(5, discount=1.0)
  loss = agent.critic_loss(batch, target_members=tf.constant([1, 2]), seed=SEED)
  expected = np_critic_loss(agent, batch, np_td_target(agent, batch, [1, 2], alpha=0.5))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize('reward_scale', [0.0, 0.5])
def test_reward_scale_multiplies_the_reward_in_the_target(reward_scale):
  agent = make_agent(reward_scale=reward_scale)
  randomize(agent.critic_network, seed=1)
  batch = make_batch(5, reward=-1.0)  # the RLIF rule's takeover reward on every sample
  loss = agent.critic_loss(batch, target_members=tf.constant([0, 2]), seed=SEED)
  expected = np_critic_loss(agent, batch, np_td_target(agent, batch, [0, 2],
                                                       reward_scale=reward_scale))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  unscaled = np_critic_loss(agent, batch, np_td_target(agent, batch, [0, 2]))
  assert abs(unscaled - expected) > 1e-3


def test_actor_loss_uses_mean_over_all_critics(agent):
  agent.log_alpha.assign(math.log(0.3))
  observation = make_batch(6).observation
  action, log_prob = np_policy_sample(agent, observation.numpy(), SEED)
  q = np_critic(agent.critic_network, observation.numpy(), action)  # [E, B]
  expected = np.mean(0.3 * log_prob - q.mean(0))
  np.testing.assert_allclose(agent.actor_loss(observation, seed=SEED).numpy(), expected, rtol=1e-5)
  assert abs(np.mean(0.3 * log_prob - q.min(0)) - expected) > 1e-3


def test_actor_pessimism_rates_actions_by_mean_minus_k_std_over_the_critics():
  agent = make_agent(actor_pessimism=2.0)
  agent.log_alpha.assign(math.log(0.3))
  observation = make_batch(6).observation
  action, log_prob = np_policy_sample(agent, observation.numpy(), SEED)
  q = np_critic(agent.critic_network, observation.numpy(), action)  # [E, B]
  expected = np.mean(0.3 * log_prob - (q.mean(0) - 2.0 * q.std(0)))
  np.testing.assert_allclose(agent.actor_loss(observation, seed=SEED).numpy(), expected, rtol=1e-5)
  assert np.mean(2.0 * q.std(0)) > 1e-3  # the critics disagree, so the check above can fail
  with pytest.raises(ValueError, match='actor_pessimism'):
    make_agent(actor_pessimism=-1.0)


@pytest.mark.parametrize('error, np_error', [('mse', np.square), ('mae', np.abs)])
def test_actor_loss_behaviour_term_is_the_weighted_error_to_the_logged_action(error, np_error):
  agent = make_agent(bc_weight=0.5, bc_error=error)
  agent.log_alpha.assign(math.log(0.3))
  batch = make_batch(6)
  observation = batch.observation.numpy()
  action, log_prob = np_policy_sample(agent, observation, SEED)
  q = np_critic(agent.critic_network, observation, action)
  mean, _ = np_actor_mean_log_std(agent.actor_network, observation)
  difference = np.tanh(mean) - batch.action.numpy()
  bc = np.mean(np.sum(np_error(difference), axis=-1))
  expected = np.mean(0.3 * log_prob - q.mean(0)) + 0.5 * bc
  np.testing.assert_allclose(
      agent.actor_loss(batch.observation, seed=SEED, data_action=batch.action).numpy(),
      expected, rtol=1e-5)
  assert bc > 0.1  # the term is not negligible here, so the check above can fail
  # The squared and absolute errors differ by more than the tolerance here.
  assert abs(np.mean(np.abs(difference).sum(-1)) - np.mean((difference ** 2).sum(-1))) > 0.05
  # Without logged actions (or with weight 0) it is the RLPD actor loss.
  np.testing.assert_allclose(agent.actor_loss(batch.observation, seed=SEED).numpy(),
                             expected - 0.5 * bc, rtol=1e-5)
  assert np.isfinite(float(agent.train(batch).loss))  # and the train step runs with it


def test_unknown_behaviour_error_is_refused():
  with pytest.raises(ValueError, match='bc_error'):
    make_agent(bc_error='huber')


def test_behaviour_term_on_demonstrated_actions_only():
  agent = make_agent(bc_weight=0.5, bc_actions='demonstrated')
  agent.log_alpha.assign(math.log(0.3))
  demonstrated = np.array([1, 0, 0, 1, 0, 1], np.float32)
  batch = make_batch(6, demonstrated=demonstrated)
  observation = batch.observation.numpy()
  action, log_prob = np_policy_sample(agent, observation, SEED)
  q = np_critic(agent.critic_network, observation, action)
  mean, _ = np_actor_mean_log_std(agent.actor_network, observation)
  error = np.sum((np.tanh(mean) - batch.action.numpy()) ** 2, axis=-1)
  rl = np.mean(0.3 * log_prob - q.mean(0))
  # Only samples 0, 3 and 5 are imitated, averaged over those three.
  expected = rl + 0.5 * (error[0] + error[3] + error[5]) / 3
  loss = agent.actor_loss(batch.observation, seed=SEED, data_action=batch.action,
                          demonstrated=batch.demonstrated).numpy()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  assert abs(expected - (rl + 0.5 * error.mean())) > 1e-3  # differs from the unmasked term
  # A batch without any demonstrated action has no behaviour term at all.
  none = make_batch(6, demonstrated=0.0)
  np.testing.assert_allclose(
      agent.actor_loss(none.observation, seed=SEED, data_action=none.action,
                       demonstrated=none.demonstrated).numpy(), rl, rtol=1e-5)
  # Weights (an operator's step weighing 4): a weighted mean, (e0 + 4 e3 + e5) / 6.
  weighted = batch._replace(demonstrated=tf.constant([1, 0, 0, 4, 0, 1], tf.float32))
  np.testing.assert_allclose(
      agent.actor_loss(weighted.observation, seed=SEED, data_action=weighted.action,
                       demonstrated=weighted.demonstrated).numpy(),
      rl + 0.5 * (error[0] + 4 * error[3] + error[5]) / 6, rtol=1e-5)
  assert np.isfinite(float(agent.train(batch).loss))
  with pytest.raises(ValueError, match='bc_actions'):
    make_agent(bc_actions='expert')


def test_temperature_loss_and_default_target_entropy(agent):
  assert agent.target_entropy == -ACT_DIM / 2
  agent.log_alpha.assign(math.log(0.3))
  observation = make_batch(6).observation
  _, log_prob = np_policy_sample(agent, observation.numpy(), SEED)
  expected = np.mean(-math.log(0.3) * (log_prob - ACT_DIM / 2))
  np.testing.assert_allclose(agent.temperature_loss(observation, seed=SEED).numpy(), expected,
                             rtol=1e-5)
  assert make_agent(target_entropy=-5.0).target_entropy == -5.0


@pytest.mark.parametrize('use_xla', [False, True])
@pytest.mark.parametrize('updates', [1, 5])
def test_one_train_call_is_g_critic_updates_and_one_actor_and_temperature_update(updates, use_xla):
  agent = make_agent(critic_updates_per_step=updates, use_xla=use_xla)
  loss_info = agent.train(make_batch(4 * updates))
  assert agent.critic_optimizer.iterations.numpy() == updates
  assert agent.actor_optimizer.iterations.numpy() == 1
  assert agent.temperature_optimizer.iterations.numpy() == 1
  assert agent.train_step_counter.numpy() == 1
  assert set(loss_info.extra) == set(METRIC_NAMES)
  assert all(np.isfinite(v.numpy()) for v in loss_info.extra.values())


def test_actor_and_temperature_wait_for_the_critic_warm_up():
  agent = make_agent(critic_updates_per_step=2, actor_update_after=3)
  actor_before = [v.numpy() for v in agent.actor_network.variables]
  log_alpha_before = agent.log_alpha.numpy()
  for _ in range(3):
    loss_info = agent.train(make_batch(8))
    assert np.isfinite(float(loss_info.extra['actor_loss']))
  assert agent.critic_optimizer.iterations.numpy() == 6
  assert agent.actor_optimizer.iterations.numpy() == 0
  assert agent.temperature_optimizer.iterations.numpy() == 0
  for before, after in zip(actor_before, agent.actor_network.variables):
    np.testing.assert_array_equal(before, after.numpy())
  assert agent.log_alpha.numpy() == log_alpha_before
  agent.train(make_batch(8))  # the 4th call: the counter reached 3
  assert agent.actor_optimizer.iterations.numpy() == 1
  assert agent.temperature_optimizer.iterations.numpy() == 1
  assert agent.log_alpha.numpy() != log_alpha_before


def test_target_critic_moves_by_polyak_after_each_update():
  agent = make_agent(tau=0.05)
  randomize(agent.critic_network, seed=1)
  target_old = agent.target_critic_network.variables[0].numpy()
  agent.train(make_batch(8))
  online_new = agent.critic_network.variables[0].numpy()
  np.testing.assert_allclose(agent.target_critic_network.variables[0].numpy(),
                             0.05 * online_new + 0.95 * target_old, atol=1e-6)


def test_train_metrics_describe_the_step():
  agent = make_agent(initial_temperature=0.5)
  loss_info = agent.train(make_batch(8, discount=0.0, reward=2.0))
  extra = {k: float(v) for k, v in loss_info.extra.items()}
  assert extra['temperature'] == pytest.approx(0.5)
  assert extra['target_q_mean'] == pytest.approx(2.0)  # discount 0: y = r.
  assert extra['q_std'] > 0.0
  assert float(loss_info.loss) == pytest.approx(
      extra['critic_loss'] + extra['actor_loss'] + extra['temperature_loss'], rel=1e-5)


def test_critic_learns_constant_reward_without_bootstrap():
  agent = make_agent(critic_hidden=(16,), critic_learning_rate=1e-2, critic_updates_per_step=2)
  batch = make_batch(2 * 32, reward=1.5, discount=0.0)
  first = agent.train(batch).extra
  for _ in range(150):
    last = agent.train(batch).extra
  assert float(last['critic_loss']) < 0.01 * float(first['critic_loss'])
  q, _ = agent.critic_network((batch.observation, batch.action))
  assert abs(q.numpy().mean() - 1.5) < 0.05
  np.testing.assert_allclose(q.numpy(), 1.5, atol=0.3)


def test_critic_learns_bootstrapped_value():
  # r = 1 forever with gamma 0.5: Q = 1 / (1 - 0.5) = 2, reached through the target critics.
  agent = make_agent(critic_hidden=(16,), critic_learning_rate=1e-2, gamma=0.5, tau=0.1,
                     critic_updates_per_step=4)
  batch = make_batch(4 * 32, reward=1.0, discount=1.0)
  for _ in range(100):
    agent.train(batch)
  q, _ = agent.critic_network((batch.observation, batch.action))
  assert abs(q.numpy().mean() - 2.0) < 0.1
  np.testing.assert_allclose(q.numpy(), 2.0, atol=0.4)


def test_policy_saver_round_trip(tmp_path):
  agent = make_agent()
  assert agent.time_step_spec.observation.shape == (OBS_DIM,)
  assert agent.action_spec.minimum == -1.0 and agent.action_spec.maximum == 1.0
  observation = make_batch(3).observation
  time_step = ts.restart(observation, batch_size=3)
  expected = np.tanh(np_actor_mean_log_std(agent.actor_network, observation.numpy())[0])
  np.testing.assert_allclose(agent.policy.action(time_step).action.numpy(), expected, atol=1e-5)
  sampled = agent.collect_policy.action(time_step, seed=1).action.numpy()
  assert sampled.shape == (3, ACT_DIM) and np.all(np.abs(sampled) <= 1.0)

  policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(tmp_path / 'policy'))
  loaded = tf.saved_model.load(str(tmp_path / 'policy'))
  np.testing.assert_allclose(loaded.action(time_step).action.numpy(), expected, atol=1e-5)


def test_checkpoint_restores_everything(tmp_path):
  batch = make_batch(2 * 8)
  original = make_agent(critic_updates_per_step=2)
  original.train(batch)
  original.train(batch)  # Optimizer slots, log_alpha and targets all moved.
  path = tf.train.Checkpoint(agent=original).save(str(tmp_path / 'ckpt'))

  restored = make_agent(critic_updates_per_step=2, seed=123)
  tf.train.Checkpoint(agent=restored).restore(path).assert_existing_objects_matched()
  assert restored.train_step_counter.numpy() == 2
  assert restored.critic_optimizer.iterations.numpy() == 4
  for _ in range(2):
    a, b = original.train(batch).extra, restored.train(batch).extra
    for name in METRIC_NAMES:
      np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-6, err_msg=name)
  for a, b in zip(original.variables, restored.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, err_msg=a.name)


@pytest.mark.parametrize('use_xla', [False, True])
def test_fused_updates_equal_keras_updates(use_xla):
  """Adam through ResourceApplyAdam and the fused Polyak update give Keras' results: every
  network weight, target, optimizer slot and the temperature after three train calls."""
  kwargs = dict(critic_updates_per_step=2, bc_weight=0.5, use_xla=use_xla)
  fused, plain = make_agent(fused_updates=True, **kwargs), make_agent(fused_updates=False, **kwargs)
  batch = make_batch(16)
  for _ in range(3):
    fused_loss, plain_loss = fused.train(batch), plain.train(batch)
  np.testing.assert_allclose(float(fused_loss.loss), float(plain_loss.loss), rtol=1e-5)

  def variables(agent):
    optimizers = (agent.critic_optimizer, agent.actor_optimizer, agent.temperature_optimizer)
    return list(agent.variables) + [v for o in optimizers for v in o.variables]

  def state(agent):
    return [v.numpy() for v in variables(agent)]

  names = [v.name for v in variables(fused)]
  assert len(names) == len(variables(plain)) > 40  # networks, targets and Adam's slots
  changed = 0
  for name, a, b, before in zip(names, state(fused), state(plain), state(make_agent(**kwargs))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    changed += not np.array_equal(a, before)
  assert changed > 20  # the comparison covers updated values, not initial ones
  assert int(fused.critic_optimizer.iterations) == 6 and int(fused.actor_optimizer.iterations) == 3


def test_checkpoints_restore_across_fused_and_plain_updates(tmp_path):
  """Both modes keep the same variables: a checkpoint of one restores into the other."""
  plain = make_agent(fused_updates=False)
  plain.train(make_batch(8))
  path = tf.train.Checkpoint(agent=plain).save(str(tmp_path / 'ckpt'))
  fused = make_agent(fused_updates=True)
  tf.train.Checkpoint(agent=fused).restore(path).assert_existing_objects_matched()
  for a, b in zip(fused.variables, plain.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert np.isfinite(float(fused.train(make_batch(8)).loss))


# ---------------------------------------------------------------------------------------------
# Dict observations (the pixel learner): one encoder shared by the critics and the actor.

PIXEL_SPEC = (sc.ObservationField('camera', (12, 12, 3)), sc.ObservationField('state', (OBS_DIM,)))
PIXEL_ENCODER = {'filters': 4, 'strides': [2, 1], 'features': 5, 'image_shift': 2}


def make_pixel_agent(**kwargs):
  settings = dict(num_critics=3, num_min_critics=2, critic_hidden=(8,), actor_hidden=(8,),
                  seed=0, use_xla=False, encoder=PIXEL_ENCODER)
  settings.update(kwargs)
  return RlpdAgent.from_dims(PIXEL_SPEC, ACT_DIM, **settings)


def pixel_observation(rng, size):
  return {'camera': tf.constant(rng.integers(0, 256, (size, 12, 12, 3), dtype=np.uint8)),
          'state': tf.constant(rng.normal(size=(size, OBS_DIM)).astype(np.float32))}


def make_pixel_batch(size, seed=0, **kwargs):
  rng = np.random.default_rng(seed + 100)
  return make_batch(size, seed, **kwargs)._replace(
      observation=pixel_observation(rng, size), next_observation=pixel_observation(rng, size))


def test_a_dict_observation_gets_one_encoder_for_the_critics_and_the_actor():
  agent = make_pixel_agent()
  spec = agent.training_data_spec.observation
  assert spec['camera'].dtype == tf.uint8 and spec['camera'].shape == (12, 12, 3)
  assert spec['state'].dtype == tf.float32 and spec['state'].shape == (OBS_DIM,)
  assert agent.encoder.output_dim == 5 + OBS_DIM  # the camera's features, then the state
  assert agent.actor_network.input_tensor_spec.shape == (8,)
  assert agent.critic_network.input_tensor_spec[0].shape == (8,)
  policy_variables = {id(v) for v in agent.policy.variables()}
  assert {id(v) for v in agent.encoder.variables} <= policy_variables  # exported with the actor
  assert not {id(v) for v in agent.target_encoder.variables} & policy_variables
  for online, target in zip(agent.encoder.variables, agent.target_encoder.variables):
    assert online is not target
    np.testing.assert_array_equal(online.numpy(), target.numpy())  # targets start equal
  assert make_agent().encoder is None and make_agent().target_encoder is None  # flat: none


def test_critic_loss_reads_the_target_encoder_for_the_target_and_the_online_one_elsewhere():
  agent = make_pixel_agent()
  randomize(agent.critic_network, seed=1)
  randomize(agent.target_encoder, seed=2)  # so that using the wrong encoder shows
  batch = make_pixel_batch(5)
  members = [0, 2]
  loss = agent.critic_loss(batch, target_members=tf.constant(members), seed=SEED)
  features = agent.encoder(batch.observation).numpy()
  next_features = agent.encoder(batch.next_observation).numpy()  # a' ~ pi(.|s') sees these
  next_target_features = agent.target_encoder(batch.next_observation).numpy()
  mean, log_std = np_actor_mean_log_std(agent.actor_network, next_features)
  next_action, _ = np_tanh_gaussian(mean, log_std,
                                    tf.random.stateless_normal(mean.shape, SEED).numpy())
  next_q = np_critic(agent.target_critic_network, next_target_features, next_action)[members]
  target = batch.reward.numpy() + 0.99 * batch.discount.numpy() * next_q.min(0)
  q = np_critic(agent.critic_network, features, batch.action.numpy())
  np.testing.assert_allclose(loss.numpy(), np.mean((q - target[None]) ** 2), rtol=1e-4)


def test_the_critic_loss_trains_the_encoder_and_the_actor_loss_does_not():
  agent = make_pixel_agent(bc_weight=0.5)
  randomize(agent.critic_network, seed=1)
  batch = make_pixel_batch(6)
  encoder_variables = agent.encoder.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    critic_loss = agent.critic_loss(batch, seed=SEED)
    actor_loss = agent.actor_loss(batch.observation, seed=SEED, data_action=batch.action)
    temperature_loss = agent.temperature_loss(batch.observation, seed=SEED)
  gradients = tape.gradient(critic_loss, encoder_variables)
  assert len(gradients) == 8  # two convolutions, the projection and its LayerNorm
  assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in gradients)
  assert tape.gradient(critic_loss, agent.target_encoder.trainable_variables) == [None] * 8
  assert tape.gradient(actor_loss, encoder_variables) == [None] * 8  # stop_gradient
  assert tape.gradient(temperature_loss, encoder_variables) == [None] * 8
  assert all(g is not None and np.abs(g.numpy()).max() > 0
             for g in tape.gradient(actor_loss, agent.actor_network.trainable_variables))


@pytest.mark.parametrize('fused_updates', [True, False])
def test_the_target_encoder_follows_the_online_one_by_polyak(fused_updates):
  agent = make_pixel_agent(tau=0.05, fused_updates=fused_updates, critic_updates_per_step=1)
  randomize(agent.target_encoder, seed=2)
  online_old = [v.numpy() for v in agent.encoder.variables]
  target_old = [v.numpy() for v in agent.target_encoder.variables]
  actor_old = [v.numpy() for v in agent.actor_network.variables]
  agent.train(make_pixel_batch(8))
  for online, before in zip(agent.encoder.variables, online_old):
    assert not np.array_equal(online.numpy(), before)  # the critic update moved it
  for target, online, before in zip(agent.target_encoder.variables, agent.encoder.variables,
                                    target_old):
    np.testing.assert_allclose(target.numpy(), 0.05 * online.numpy() + 0.95 * before, atol=1e-6)
  assert any(not np.array_equal(v.numpy(), before)
             for v, before in zip(agent.actor_network.variables, actor_old))
  assert int(agent.critic_optimizer.iterations) == 1 and int(agent.actor_optimizer.iterations) == 1


def test_the_pixel_recipe_trains_g_critic_updates_per_call_and_restores(tmp_path):
  kwargs = dict(critic_updates_per_step=2, bc_weight=0.4, actor_update_after=1,
                initial_temperature=0.01)
  agent = make_pixel_agent(**kwargs)
  batch = make_pixel_batch(2 * 8)
  for _ in range(2):
    extra = {k: float(v) for k, v in agent.train(batch).extra.items()}
    assert all(np.isfinite(v) for v in extra.values()), extra
  assert int(agent.critic_optimizer.iterations) == 4  # G = 2 per call
  assert int(agent.actor_optimizer.iterations) == 1   # the warm-up held the first call back
  path = tf.train.Checkpoint(agent=agent).save(str(tmp_path / 'ckpt'))
  restored = make_pixel_agent(seed=123, **kwargs)
  tf.train.Checkpoint(agent=restored).restore(path).assert_existing_objects_matched()
  for a, b in zip(agent.variables, restored.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
  a, b = agent.train(batch).extra, restored.train(batch).extra
  for name in METRIC_NAMES:
    np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-6, err_msg=name)


def test_pixel_policy_saver_round_trip_acts_on_the_unshifted_image(tmp_path):
  agent = make_pixel_agent()
  observation = make_pixel_batch(3).observation
  time_step = ts.restart(observation, batch_size=3)
  features = agent.encoder(observation).numpy()
  expected = np.tanh(np_actor_mean_log_std(agent.actor_network, features)[0])
  np.testing.assert_allclose(agent.policy.action(time_step).action.numpy(), expected, atol=1e-5)
  policy_saver.PolicySaver(agent.policy, batch_size=None).save(str(tmp_path / 'policy'))
  loaded = tf.saved_model.load(str(tmp_path / 'policy'))
  np.testing.assert_allclose(loaded.action(time_step).action.numpy(), expected, atol=1e-5)
  inverted = dict(observation, camera=255 - observation['camera'])
  moved = loaded.action(ts.restart(inverted, batch_size=3)).action.numpy()
  assert np.abs(moved - expected).max() > 1e-3  # the action depends on the image
