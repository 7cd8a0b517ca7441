"""The learners' networks: an ensemble of Q critics on one leading axis, and a tanh-Gaussian actor.

Both are TF-Agents `Network`s so that checkpoints and `ActorPolicy`/`PolicySaver` handle them like
any stock network. Actions live in [-1, 1] (float32) everywhere in the trainer.
"""

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.distributions import utils as distribution_utils
from tf_agents.networks import network
from tf_agents.policies import actor_policy
from tf_agents.policies import greedy_policy
from tf_agents.specs import distribution_spec
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from trainer.transition import Transition

# RLPD (and SAC before it) clip the actor's log standard deviation to this range.
LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0
# Dataset actions are pulled inside (-1, 1) before atanh so their log-likelihood stays finite.
ACTION_CLIP = 1.0 - 1e-6
# As in Flax's LayerNorm, which the RLPD critics use.
LAYER_NORM_EPSILON = 1e-6


# ----------------------------------------------------------------------------------------------
# Specs


def observation_tensor_spec(observation):
  """The observation's TensorSpec: `observation` is a dataset's observation spec
  (pipeline.schema.ObservationSpec), an int D for one flat float32 vector, or the fields of a
  dict observation (`ObservationField`s), which give {name: uint8 [H, W, C] image or float32
  [D] vector}."""
  if isinstance(observation, (int, np.integer)):
    return tf.TensorSpec([int(observation)], tf.float32, name='observation')
  return {field.name: tf.TensorSpec(field.shape, tf.uint8 if field.is_image else tf.float32,
                                    name=field.name)
          for field in observation}


def specs_from_dims(observation,
                    action_dim: int) -> Tuple[ts.TimeStep, tensor_spec.BoundedTensorSpec]:
  """The (time_step_spec, action_spec) of an observation (`observation_tensor_spec`: an int D for
  a flat float32 vector, or a dict observation's fields) and an action in [-1, 1]^action_dim."""
  action_spec = tensor_spec.BoundedTensorSpec(
      [action_dim], tf.float32, minimum=-1.0, maximum=1.0, name='action')
  return ts.time_step_spec(observation_tensor_spec(observation)), action_spec


def transition_spec(time_step_spec: ts.TimeStep,
                    action_spec: tensor_spec.BoundedTensorSpec) -> Transition:
  """The spec of one (unbatched) `Transition`: what the agents' `train` consumes."""
  observation_spec = time_step_spec.observation
  return Transition(
      observation=observation_spec,
      action=action_spec,
      reward=tf.TensorSpec([], tf.float32, name='reward'),
      discount=tf.TensorSpec([], tf.float32, name='discount'),
      next_observation=observation_spec,
      demonstrated=tf.TensorSpec([], tf.float32, name='demonstrated'))


def _check_vector(name: str, spec) -> None:
  if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 1 or spec.dtype != tf.float32:
    raise ValueError(f'{name} spec must be one float32 vector, got {spec}')


def _check_action_spec(action_spec) -> int:
  """action_dim; raises unless the action is a float32 vector in [-1, 1]."""
  _check_vector('action', action_spec)
  if not (np.all(action_spec.minimum == -1.0) and np.all(action_spec.maximum == 1.0)):
    raise ValueError(f'action bounds must be [-1, 1], got {action_spec}')
  return int(action_spec.shape[0])


def check_flat_specs(time_step_spec: ts.TimeStep, action_spec) -> Tuple[int, int]:
  """(observation_dim, action_dim); raises unless both are flat float32 and actions in [-1, 1]."""
  _check_vector('observation', time_step_spec.observation)
  return int(time_step_spec.observation.shape[0]), _check_action_spec(action_spec)


def check_specs(time_step_spec: ts.TimeStep, action_spec) -> int:
  """action_dim; raises unless the observation is one flat float32 vector or a dict of fields
  (checked by the encoder, trainer/encoder.py) and the action a float32 vector in [-1, 1]."""
  if not isinstance(time_step_spec.observation, dict):
    _check_vector('observation', time_step_spec.observation)
  return _check_action_spec(action_spec)


# ----------------------------------------------------------------------------------------------
# Ensemble critic


def _ensemble_glorot_uniform(seed: Optional[Tuple[int, int]]):
  """Keras' default dense init (Glorot uniform on [in, out]), drawn independently per member."""

  def initializer(shape, dtype=tf.float32):
    _, fan_in, fan_out = shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    if seed is None:
      return tf.random.uniform(shape, -limit, limit, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed, -limit, limit, dtype=dtype)

  return initializer


def layer_norm_autodiff(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor,
                        epsilon: float = LAYER_NORM_EPSILON) -> tf.Tensor:
  """LayerNorm over the last (feature) axis, differentiated op by op by autodiff (the reference
  `layer_norm` is checked against, and the benchmark's "before" row)."""
  # Written out (rather than tf.nn.moments) with the per-row factor folded into `scale` first:
  # fewer full-size elementwise passes, measurably faster on CPU.
  centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
  variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
  return centered * (tf.math.rsqrt(variance + epsilon) * scale) + offset


def _normalize(x: tf.Tensor, epsilon: float) -> tf.Tensor:
  """(x - mean) / sqrt(var + epsilon) over the last axis, with its gradient in closed form:
  dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + epsilon). Autodiff builds the same
  from the forward ops one by one (about twice the graph ops, each a full pass over the
  activations); this is the fused backward of LayerNorm kernels elsewhere."""

  @tf.custom_gradient
  def normalize(x):
    centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    inverse_std = tf.math.rsqrt(
        tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)
    x_hat = centered * inverse_std

    def gradient(g):
      return inverse_std * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                            - x_hat * tf.reduce_mean(g * x_hat, axis=-1, keepdims=True))
    return x_hat, gradient

  return normalize(x)


def layer_norm(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor,
               epsilon: float = LAYER_NORM_EPSILON) -> tf.Tensor:
  """LayerNorm over the last (feature) axis; `scale`/`offset` broadcast per ensemble member.
  Same values as `layer_norm_autodiff`; the normalisation's gradient is written in closed form
  (`_normalize`). First-order only: nothing here differentiates twice."""
  return _normalize(x, epsilon) * scale + offset


class EnsembleCriticNetwork(network.Network):
  """E independent Q(s, a) critics computed together as one batched MLP.

  Every weight has a leading ensemble axis [E, ...]; each hidden layer is one batched matmul
  followed by LayerNorm (per member, over features, with per-member scale and offset) and ReLU.
  The call returns Q-values shaped [E, B]. `members` (int indices) restricts the forward pass to a
  subset of the ensemble, which is how the TD target evaluates only M of the E target critics.
  """

  def __init__(self,
               input_tensor_spec: Tuple[tf.TensorSpec, tf.TensorSpec],
               num_critics: int = 10,
               hidden_sizes: Sequence[int] = (256, 256, 256),
               seed: Optional[int] = None,
               name: str = 'EnsembleCriticNetwork'):
    observation_spec, action_spec = input_tensor_spec
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
    self._num_critics = num_critics
    self._hidden_sizes = tuple(hidden_sizes)
    input_dim = observation_spec.shape[-1] + action_spec.shape[-1]
    sizes = (input_dim,) + self._hidden_sizes + (1,)
    self._kernels, self._biases, self._ln_scales, self._ln_offsets = [], [], [], []
    with tf.name_scope(name):  # Variable names start with the network's name.
      for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer_seed = None if seed is None else (seed, i)
        self._kernels.append(self.add_weight(
            f'dense_{i}/kernel', shape=[num_critics, fan_in, fan_out], dtype=tf.float32,
            initializer=_ensemble_glorot_uniform(layer_seed)))
        self._biases.append(self.add_weight(
            f'dense_{i}/bias', shape=[num_critics, 1, fan_out], dtype=tf.float32,
            initializer='zeros'))
        if i < len(self._hidden_sizes):
          self._ln_scales.append(self.add_weight(
              f'layer_norm_{i}/scale', shape=[num_critics, 1, fan_out], dtype=tf.float32,
              initializer='ones'))
          self._ln_offsets.append(self.add_weight(
              f'layer_norm_{i}/offset', shape=[num_critics, 1, fan_out], dtype=tf.float32,
              initializer='zeros'))
    self.built = True

  @property
  def num_critics(self) -> int:
    return self._num_critics

  @property
  def hidden_sizes(self) -> Tuple[int, ...]:
    return self._hidden_sizes

  def call(self, inputs, step_type=None, network_state=(), training=False, members=None):
    del step_type, training  # No recurrence, no dropout.
    observation, action = inputs
    x = tf.concat([observation, action], axis=-1)  # [B, in], shared by all members.

    def pick(weight):
      return weight if members is None else tf.gather(weight, members)

    num_hidden = len(self._hidden_sizes)
    for i in range(num_hidden + 1):
      kernel, bias = pick(self._kernels[i]), pick(self._biases[i])
      if i == 0:
        h = tf.einsum('bi,eio->ebo', x, kernel) + bias  # [B, in] x [E, in, out]
      else:
        h = tf.linalg.matmul(h, kernel) + bias  # [E, B, in] x [E, in, out]
      if i < num_hidden:
        h = tf.nn.relu(layer_norm(h, pick(self._ln_scales[i]), pick(self._ln_offsets[i])))
    return tf.squeeze(h, axis=-1), network_state


# ----------------------------------------------------------------------------------------------
# Tanh-Gaussian actor


def _tanh_log_det_jacobian(pre_tanh: tf.Tensor) -> tf.Tensor:
  """log(1 - tanh(u)^2), written so that it stays finite for large |u|."""
  return 2.0 * (math.log(2.0) - pre_tanh - tf.nn.softplus(-2.0 * pre_tanh))


def _gaussian_log_prob(noise: tf.Tensor, log_std: tf.Tensor) -> tf.Tensor:
  return -0.5 * tf.square(noise) - log_std - 0.5 * math.log(2.0 * math.pi)


def tanh_gaussian_sample(mean: tf.Tensor, log_std: tf.Tensor,
                         seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """A reparameterized sample a = tanh(mean + std * eps) and its log-density (summed over dims).

  `eps = tf.random.stateless_normal(shape(mean), seed)`, so a given `seed` ([2] int) fixes it.
  """
  noise = tf.random.stateless_normal(tf.shape(mean), seed=seed, dtype=mean.dtype)
  pre_tanh = mean + tf.exp(log_std) * noise
  log_prob = _gaussian_log_prob(noise, log_std) - _tanh_log_det_jacobian(pre_tanh)
  return tf.tanh(pre_tanh), tf.reduce_sum(log_prob, axis=-1)


def tanh_gaussian_log_prob(mean: tf.Tensor, log_std: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
  """Log-density of given actions; they are clipped to +-ACTION_CLIP before atanh."""
  pre_tanh = tf.atanh(tf.clip_by_value(action, -ACTION_CLIP, ACTION_CLIP))
  noise = (pre_tanh - mean) * tf.exp(-log_std)
  log_prob = _gaussian_log_prob(noise, log_std) - _tanh_log_det_jacobian(pre_tanh)
  return tf.reduce_sum(log_prob, axis=-1)


# How the deployed action is fitted to logged actions (`deployed_action_error`).
IMITATION_ERRORS = ('mse', 'mae')


def deployed_action_error(mean: tf.Tensor, action: tf.Tensor, error: str = 'mse') -> tf.Tensor:
  """Per-sample error of the deployed action tanh(mean) against `action`, summed over the action
  dimensions: the supervised learners' fit and the RL actor's behaviour term.

  'mse' (squared) is minimised by the mean of the logged actions in a state, 'mae' (absolute) by
  their median. The difference matters where the logged actions are clipped: for an operator's
  intended action a with symmetric noise, clip(a + noise) has median clip(a) (clipping is
  monotone), while its mean is pulled inward from the bounds (sim/EXPERTS.md).
  """
  difference = tf.tanh(mean) - action
  if error == 'mse':
    return tf.reduce_sum(tf.square(difference), axis=-1)
  if error == 'mae':
    return tf.reduce_sum(tf.abs(difference), axis=-1)
  raise ValueError(f'error must be one of {IMITATION_ERRORS}, got {error!r}')


class TanhGaussianActorNetwork(network.DistributionNetwork):
  """pi(a|s) = tanh(N(mean(s), exp(log_std(s)))) with a state-dependent mean and log-std.

  An MLP (Dense + ReLU, Keras default init) feeds one Dense head with 2|A| outputs: the mean and
  the log-std, the latter clipped to [LOG_STD_MIN, LOG_STD_MAX]. Calling the network returns the
  squashed distribution (TF-Agents' `SquashToSpecNormal`, whose mode is tanh(mean)) as
  `ActorPolicy` expects. The learners use `mean_and_log_std` with the closed-form sampling and
  log-density functions above, which do not depend on the bijector cache.
  """

  def __init__(self,
               observation_spec: tf.TensorSpec,
               action_spec: tensor_spec.BoundedTensorSpec,
               hidden_sizes: Sequence[int] = (256, 256, 256),
               seed: Optional[int] = None,
               name: str = 'TanhGaussianActorNetwork'):
    action_dim = int(action_spec.shape[0])
    super().__init__(
        input_tensor_spec=observation_spec, state_spec=(),
        output_spec=self._distribution_spec(action_spec, name), name=name)
    self._action_spec = action_spec
    self._hidden_sizes = tuple(hidden_sizes)

    def initializer(i):
      return tf.keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)

    self._hidden_layers = [
        tf.keras.layers.Dense(size, activation='relu', kernel_initializer=initializer(i),
                              name=f'dense_{i}')
        for i, size in enumerate(self._hidden_sizes)]
    self._head = tf.keras.layers.Dense(
        2 * action_dim, kernel_initializer=initializer(len(self._hidden_sizes)), name='head')
    # Build eagerly so that no variable is first created inside a (possibly XLA) train step.
    in_dim = int(observation_spec.shape[0])
    with tf.name_scope(name):
      for layer in self._hidden_layers + [self._head]:
        with tf.name_scope(layer.name):
          layer.build((None, in_dim))
        in_dim = layer.units
    self.built = True

  @staticmethod
  def _distribution_spec(action_spec, name):
    param_spec = {
        'loc': tf.TensorSpec(action_spec.shape, tf.float32, name=f'{name}_loc'),
        'scale_diag': tf.TensorSpec(action_spec.shape, tf.float32, name=f'{name}_scale_diag'),
    }

    def builder(loc, scale_diag):
      return distribution_utils.SquashToSpecNormal(
          tfp.distributions.MultivariateNormalDiag(loc=loc, scale_diag=scale_diag), action_spec)

    return distribution_spec.DistributionSpec(builder, param_spec, sample_spec=action_spec)

  @property
  def hidden_sizes(self) -> Tuple[int, ...]:
    return self._hidden_sizes

  def mean_and_log_std(self, observation: tf.Tensor, training: bool = False,
                       log_std_on_stopped_features: bool = False
                       ) -> Tuple[tf.Tensor, tf.Tensor]:
    """The pre-tanh mean and the clipped log-std. With `log_std_on_stopped_features` the
    log-std is computed from the last hidden layer under `tf.stop_gradient`: same values, but a
    loss on it trains only the head's log-std outputs, never the layers the mean shares."""
    h = observation
    for layer in self._hidden_layers:
      h = layer(h, training=training)
    mean, log_std = tf.split(self._head(h, training=training), 2, axis=-1)
    if log_std_on_stopped_features:
      _, log_std = tf.split(self._head(tf.stop_gradient(h), training=training), 2, axis=-1)
    return mean, tf.clip_by_value(log_std, LOG_STD_MIN, LOG_STD_MAX)

  def call(self, observation, step_type=None, network_state=(), training=False):
    del step_type  # Feed-forward.
    mean, log_std = self.mean_and_log_std(observation, training)
    distribution = self.output_spec.build_distribution(loc=mean, scale_diag=tf.exp(log_std))
    return distribution, network_state


def actor_policies(time_step_spec: ts.TimeStep, action_spec: tensor_spec.BoundedTensorSpec,
                   actor: TanhGaussianActorNetwork):
  """(policy, collect_policy): tanh(mean) to deploy, a tanh-Gaussian sample to collect."""
  collect_policy = actor_policy.ActorPolicy(
      time_step_spec, action_spec, actor_network=actor, training=False)
  return greedy_policy.GreedyPolicy(collect_policy), collect_policy
