"""Networks against hand-written numpy forward passes."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from trainer import networks

OBS_DIM, ACT_DIM = 3, 2


# numpy references, also used by the agents' tests --------------------------------------------


def np_layer_norm(x, scale, offset, eps=networks.LAYER_NORM_EPSILON):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * scale + offset


def np_critic_member(critic, e, observation, action):
  """Q of ensemble member `e`, computed alone with numpy: [B]."""
  weights = {v.name.split('/', 1)[1].split(':')[0]: v.numpy() for v in critic.variables}
  h = np.concatenate([observation, action], -1).astype(np.float64)
  num_hidden = len(critic.hidden_sizes)
  for i in range(num_hidden + 1):
    h = h @ weights[f'dense_{i}/kernel'][e] + weights[f'dense_{i}/bias'][e]
    if i < num_hidden:
      h = np_layer_norm(h, weights[f'layer_norm_{i}/scale'][e],
                        weights[f'layer_norm_{i}/offset'][e])
      h = np.maximum(h, 0.0)
  return h[:, 0]


def np_critic(critic, observation, action):
  return np.stack([np_critic_member(critic, e, observation, action)
                   for e in range(critic.num_critics)])


def np_actor_mean_log_std(actor, observation):
  variables = [v.numpy().astype(np.float64) for v in actor.variables]  # kernel, bias per layer
  h = observation.astype(np.float64)
  for kernel, bias in zip(variables[0:-2:2], variables[1:-2:2]):
    h = np.maximum(h @ kernel + bias, 0.0)
  out = h @ variables[-2] + variables[-1]
  mean, log_std = np.split(out, 2, axis=-1)
  return mean, np.clip(log_std, networks.LOG_STD_MIN, networks.LOG_STD_MAX)


def np_tanh_gaussian(mean, log_std, noise):
  """(action, log pi(action)) for a given standard-normal noise."""
  pre_tanh = mean + np.exp(log_std) * noise
  log_prob = (-0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)
              - np.log(1.0 - np.tanh(pre_tanh) ** 2))
  return np.tanh(pre_tanh), log_prob.sum(-1)


def randomize(network, seed=0, scale=0.5):
  """Assign random values to every variable (LayerNorm scale/offset included)."""
  rng = np.random.default_rng(seed)
  for v in network.variables:
    v.assign(v.numpy() + scale * rng.normal(size=v.shape).astype(np.float32))


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def specs():
  return networks.specs_from_dims(OBS_DIM, ACT_DIM)


def test_ensemble_weights_have_leading_ensemble_axis(specs):
  time_step_spec, action_spec = specs
  critic = networks.EnsembleCriticNetwork(
      (time_step_spec.observation, action_spec), num_critics=4, hidden_sizes=(8, 6), seed=0)
  shapes = {v.name.split(':')[0]: tuple(v.shape) for v in critic.variables}
  assert shapes == {
      'EnsembleCriticNetwork/dense_0/kernel': (4, 5, 8),
      'EnsembleCriticNetwork/dense_0/bias': (4, 1, 8),
      'EnsembleCriticNetwork/layer_norm_0/scale': (4, 1, 8),
      'EnsembleCriticNetwork/layer_norm_0/offset': (4, 1, 8),
      'EnsembleCriticNetwork/dense_1/kernel': (4, 8, 6),
      'EnsembleCriticNetwork/dense_1/bias': (4, 1, 6),
      'EnsembleCriticNetwork/layer_norm_1/scale': (4, 1, 6),
      'EnsembleCriticNetwork/layer_norm_1/offset': (4, 1, 6),
      'EnsembleCriticNetwork/dense_2/kernel': (4, 6, 1),
      'EnsembleCriticNetwork/dense_2/bias': (4, 1, 1),
  }


def test_ensemble_init_is_per_member_glorot(specs):
  time_step_spec, action_spec = specs
  critic = networks.EnsembleCriticNetwork(
      (time_step_spec.observation, action_spec), num_critics=3, hidden_sizes=(64,), seed=0)
  kernel = critic.variables[0].numpy()  # [3, 5, 64]
  limit = math.sqrt(6.0 / (5 + 64))
  assert np.abs(kernel).max() <= limit
  assert np.abs(kernel).max() > 0.9 * limit
  assert not np.allclose(kernel[0], kernel[1]) and not np.allclose(kernel[1], kernel[2])
  np.testing.assert_array_equal(critic.variables[1].numpy(), 0.0)  # bias
  np.testing.assert_array_equal(critic.variables[2].numpy(), 1.0)  # LayerNorm scale
  same_seed = networks.EnsembleCriticNetwork(
      (time_step_spec.observation, action_spec), num_critics=3, hidden_sizes=(64,), seed=0)
  np.testing.assert_array_equal(same_seed.variables[0].numpy(), kernel)


def test_ensemble_matches_per_member_numpy(specs):
  time_step_spec, action_spec = specs
  critic = networks.EnsembleCriticNetwork(
      (time_step_spec.observation, action_spec), num_critics=3, hidden_sizes=(8, 4), seed=1)
  randomize(critic)
  rng = np.random.default_rng(2)
  observation = rng.normal(size=(5, OBS_DIM)).astype(np.float32)
  action = rng.uniform(-1, 1, size=(5, ACT_DIM)).astype(np.float32)
  q, _ = critic((observation, action))
  assert q.shape == (3, 5)
  np.testing.assert_allclose(q.numpy(), np_critic(critic, observation, action), atol=1e-5)
  # A subset of members gives exactly those members' rows.
  q_subset, _ = critic((observation, action), members=tf.constant([2, 0]))
  np.testing.assert_allclose(q_subset.numpy(), q.numpy()[[2, 0]], atol=1e-6)


def test_actor_log_prob_matches_distribution_and_numpy(specs):
  time_step_spec, action_spec = specs
  actor = networks.TanhGaussianActorNetwork(
      time_step_spec.observation, action_spec, hidden_sizes=(8,), seed=0)
  observation = np.random.default_rng(0).normal(size=(6, OBS_DIM)).astype(np.float32)
  mean, log_std = actor.mean_and_log_std(observation)
  np_mean, np_log_std = np_actor_mean_log_std(actor, observation)
  np.testing.assert_allclose(mean.numpy(), np_mean, atol=1e-5)
  np.testing.assert_allclose(log_std.numpy(), np_log_std, atol=1e-5)

  seed = tf.constant([3, 4])
  action, log_prob = networks.tanh_gaussian_sample(mean, log_std, seed)
  noise = tf.random.stateless_normal([6, ACT_DIM], seed).numpy()
  np_action, np_log_prob = np_tanh_gaussian(np_mean, np_log_std, noise)
  np.testing.assert_allclose(action.numpy(), np_action, atol=1e-5)
  np.testing.assert_allclose(log_prob.numpy(), np_log_prob, atol=1e-4)
  # The same density from the given action, and from the policy's tfp distribution.
  np.testing.assert_allclose(
      networks.tanh_gaussian_log_prob(mean, log_std, action).numpy(), np_log_prob, atol=1e-3)
  distribution, _ = actor(observation)
  np.testing.assert_allclose(distribution.log_prob(action).numpy(), np_log_prob, atol=1e-3)
  np.testing.assert_allclose(distribution.mode().numpy(), np.tanh(np_mean), atol=1e-6)


def test_actor_log_std_is_clipped_and_boundary_actions_are_finite(specs):
  time_step_spec, action_spec = specs
  actor = networks.TanhGaussianActorNetwork(
      time_step_spec.observation, action_spec, hidden_sizes=(4,), seed=0)
  head_bias = actor.variables[-1]
  head_bias.assign([0.0, 0.0, 50.0, -50.0])  # [mean (2), log_std (2)]
  _, log_std = actor.mean_and_log_std(tf.zeros([1, OBS_DIM]))
  np.testing.assert_allclose(log_std.numpy()[0], [networks.LOG_STD_MAX, networks.LOG_STD_MIN])
  log_prob = networks.tanh_gaussian_log_prob(
      tf.zeros([2, ACT_DIM]), tf.zeros([2, ACT_DIM]), tf.constant([[1.0, -1.0], [0.0, 1.0]]))
  assert np.all(np.isfinite(log_prob.numpy()))


def test_actor_distribution_is_a_squashed_gaussian(specs):
  time_step_spec, action_spec = specs
  actor = networks.TanhGaussianActorNetwork(
      time_step_spec.observation, action_spec, hidden_sizes=(4,), seed=0)
  distribution, _ = actor(tf.zeros([2, OBS_DIM]))
  assert isinstance(distribution, tfp.distributions.Distribution)
  sample = distribution.sample(seed=1).numpy()
  assert sample.shape == (2, ACT_DIM) and np.all(np.abs(sample) < 1.0)


def test_layer_norm_closed_form_gradient_equals_autodiff():
  """The fused LayerNorm backward (`_normalize`'s closed form) against TensorFlow's autodiff of
  the op-by-op version, on fixed inputs: values, input gradients and scale/offset gradients, and
  the gradient of a loss through a whole critic (as the actor's loss takes it, to the action)."""
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(3, 5, 16)) * 3 + 1, tf.float32)
  scale = tf.Variable(rng.normal(size=(3, 1, 16)).astype(np.float32))
  offset = tf.Variable(rng.normal(size=(3, 1, 16)).astype(np.float32))
  weights = tf.constant(rng.normal(size=(3, 5, 16)), tf.float32)

  def grads(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = fn(x, scale, offset)
      loss = tf.reduce_sum(tf.nn.relu(y) * weights)
    return [y] + tape.gradient(loss, [x, scale, offset])

  fused, reference = grads(networks.layer_norm), grads(networks.layer_norm_autodiff)
  np.testing.assert_allclose(fused[0], np_layer_norm(x.numpy().astype(np.float64), scale.numpy(),
                                                     offset.numpy()), atol=1e-5)
  for name, a, b in zip(('value', 'd/dx', 'd/dscale', 'd/doffset'), fused, reference):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)

  critic = networks.EnsembleCriticNetwork(
      (tf.TensorSpec([OBS_DIM]), tf.TensorSpec([ACT_DIM])), num_critics=4, hidden_sizes=(8, 8),
      seed=1)
  observation = tf.constant(rng.normal(size=(6, OBS_DIM)), tf.float32)
  action = tf.constant(rng.uniform(-1, 1, size=(6, ACT_DIM)), tf.float32)

  def critic_grads():
    with tf.GradientTape() as tape:
      tape.watch(action)
      q, _ = critic((observation, action))
      loss = tf.reduce_mean(q)
    return tape.gradient(loss, [action] + critic.trainable_variables)

  fused = critic_grads()
  original = networks.layer_norm
  networks.layer_norm = networks.layer_norm_autodiff
  try:
    reference = critic_grads()
  finally:
    networks.layer_norm = original
  for a, b in zip(fused, reference):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_deployed_action_error_sums_squares_of_tanh_mean_per_sample():
  # tanh(0) = 0 and tanh(atanh(0.5)) = 0.5, so the deployed actions are known by hand.
  mean = tf.constant([[0.0, math.atanh(0.5)], [0.0, 0.0]])
  action = tf.constant([[1.0, 0.0], [-0.5, 0.5]])
  # Sample 0: (0 - 1)^2 + (0.5 - 0)^2 = 1.25; sample 1: 0.25 + 0.25 = 0.5.
  np.testing.assert_allclose(networks.deployed_action_error(mean, action).numpy(), [1.25, 0.5],
                             rtol=1e-6)


def test_deployed_action_error_mae_sums_absolute_errors_and_unknown_errors_are_refused():
  mean = tf.constant([[0.0, math.atanh(0.5)], [0.0, 0.0]])
  action = tf.constant([[1.0, 0.0], [-0.5, 0.5]])
  # Sample 0: |0 - 1| + |0.5 - 0| = 1.5; sample 1: 0.5 + 0.5 = 1.0.
  np.testing.assert_allclose(
      networks.deployed_action_error(mean, action, 'mae').numpy(), [1.5, 1.0], rtol=1e-6)
  with pytest.raises(ValueError, match="error must be one of .*'huber'"):
    networks.deployed_action_error(mean, action, 'huber')


def test_the_absolute_error_is_minimised_by_the_median_of_clipped_noisy_actions():
  """The reason 'mae' exists: an intended action a = 0.9 logged as clip(a + N(0, 0.75^2)), as the
  noisy experts' actions are. The deployed action minimising the summed absolute error over the
  logged actions is their median, clip(0.9) = 0.9; the squared error's minimiser is their mean,
  E[clip(a + noise)] = 0.6495 in closed form (sim.experts.clipped_gaussian_mean)."""
  rng = np.random.default_rng(0)
  logged = np.clip(0.9 + 0.75 * rng.normal(size=20_000), -1.0, 1.0).astype(np.float32)
  candidates = np.linspace(-0.99, 0.99, 199)
  action = tf.constant(logged[:, None])

  def total(error, a):
    mean = tf.fill([len(logged), 1], float(math.atanh(a)))
    return float(tf.reduce_sum(networks.deployed_action_error(mean, action, error)))

  best = {error: candidates[np.argmin([total(error, a) for a in candidates])]
          for error in ('mse', 'mae')}
  assert abs(best['mae'] - 0.9) <= 0.02
  assert abs(best['mse'] - 0.65) <= 0.02
