"""Supervised baselines (BC, HG-DAgger, DAgger) on the same tanh-Gaussian actor as RLPD.

The agent fits the deterministic action tanh(mean(s)) to the dataset's actions by squared error
(`loss='mse'`) or absolute error (`loss='mae'`), or pi(a|s) by maximum likelihood
(`loss='likelihood'`). Which steps
it sees (BC: the prior data; HG-DAgger: prior data plus the expert's takeover steps; DAgger:
plus the expert's labels) is decided by the data fed to `train`, never here. It reads only
`observation` and `action` of a `Transition`.

Dict observations (camera images and vectors): the actor reads the features of a convolutional
encoder (trainer/encoder.py), trained by the same loss (there is no critic to train it), on
randomly shifted images (trainer/augmentation.py), as the RL learners' critics are.
"""

from typing import Mapping, Optional, Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import time_step as ts

from trainer import augmentation
from trainer import encoder as encoder_lib
from trainer import networks
from trainer import transition_agent
from trainer.transition import Transition

METRIC_NAMES = ('bc_loss', 'log_likelihood', 'action_mse', 'log_std_mean')
LOSSES = networks.IMITATION_ERRORS + ('likelihood',)


class SupervisedAgent(transition_agent.TransitionAgent):
  """Imitation of the dataset's actions, by one of three losses (`loss`):

    'mse':        bc_loss = mean_batch sum_dims (tanh(mean(s)) - a)^2 + spread_loss
    'mae':        bc_loss = mean_batch sum_dims |tanh(mean(s)) - a| + spread_loss
    'likelihood': bc_loss = -mean_batch log pi(a|s) - entropy_coefficient * entropy_proxy

  'mse' fits the action the policy deploys, tanh(mean), as TD3+BC's behaviour term does; the
  std is then fitted apart (spread_loss: the second form, with the mean held fixed and the
  log-std computed on stopped features, so it trains only the head's log-std outputs). An RL
  actor warm-started from it starts with a spread matched to the data, and the mean is exactly
  the squared-error fit. 'mae' is the same with the absolute error: the deployed action fits the
  median of the logged actions instead of their mean, which for clipped noisy actions is the
  clipped intended action (networks.deployed_action_error). Maximum likelihood lets a
  state-dependent std absorb what the mean gets wrong (and, a likely part of it, the actions at
  the bounds, 19% of the dimensions of pen's ~90% demonstrations, are +-7.25 before tanh,
  outliers for a fit in that space). BC on pen at the ~90/40/10% experts, 3 seeds of 50
  demonstrations, 2000 updates: 'mae' 74/77/73% success, 'mse' 74/67/56%, 'likelihood' 58/22/19%
  (benchmarks/results/bc_loss/pen.md); at 6000 updates 'mae' 81/63/61, 'mse' 87/67/63
  (pen-u6000.md).

  Dataset actions are clipped to +-(1 - 1e-6) before atanh. entropy_proxy = mean_batch sum_dims
  log_std(s) is the entropy of the pre-tanh Gaussian up to a constant; it keeps the std from
  collapsing early on nearly deterministic demonstrations (0 gives plain maximum likelihood).
  `train` takes one gradient step per call and returns `LossInfo(loss=bc_loss, extra=dict of
  METRIC_NAMES)`; `action_mse` is the squared error per action dimension, for any loss.

  `policy_average_decay` > 0 deploys a moving average of the actor's weights instead of the last
  update's (trainer/policy_average.py); the loss trains the actor itself either way.
  """

  def __init__(self,
               time_step_spec: ts.TimeStep,
               action_spec,
               *,
               actor_hidden: Sequence[int] = (256, 256, 256),
               learning_rate: float = 3e-4,
               loss: str = 'mse',
               entropy_coefficient: float = 1e-3,
               policy_average_decay: float = 0.0,
               encoder: Optional[Mapping] = None,
               use_xla: bool = False,
               seed: Optional[int] = None,
               train_step_counter: Optional[tf.Variable] = None,
               name: str = 'SupervisedAgent'):
    tf.Module.__init__(self, name=name)
    networks.check_specs(time_step_spec, action_spec)
    if loss not in LOSSES:
      raise ValueError(f'loss must be one of {LOSSES}, got {loss!r}')
    self._loss_name = loss
    self._entropy_coefficient = entropy_coefficient
    observation_spec = feature_spec = time_step_spec.observation
    self._encoder = encoder_lib.encoder_for(observation_spec, encoder, seed)
    self._rng = None
    if self._encoder is not None:
      feature_spec = self._encoder.output_spec
      self._rng = (tf.random.Generator.from_non_deterministic_state() if seed is None
                   else tf.random.Generator.from_seed(seed))
    self._actor = networks.TanhGaussianActorNetwork(
        feature_spec, action_spec, actor_hidden, seed=seed, name='Actor')
    self._optimizer = tf.keras.optimizers.Adam(learning_rate, jit_compile=False)
    self._optimizer.build(self._variables())  # No variable creation under XLA.
    deployed = self._average_actor(self._actor, policy_average_decay)
    self._finish_init(time_step_spec, action_spec,
                      encoder_lib.acting_network(self._encoder, deployed, observation_spec),
                      train_step_counter, use_xla)

  @property
  def actor_network(self) -> networks.TanhGaussianActorNetwork:
    """The actor on features (the observation itself when flat; see `encoder`)."""
    return self._actor

  @property
  def encoder(self) -> Optional[encoder_lib.ObservationEncoder]:
    """The encoder of dict observations, trained with the actor; None for a flat observation."""
    return self._encoder

  def _variables(self) -> list:
    if self._encoder is None:
      return self._actor.trainable_variables
    return self._actor.trainable_variables + self._encoder.trainable_variables

  @property
  def optimizer(self) -> tf.keras.optimizers.Optimizer:
    return self._optimizer

  def bc_loss(self, observation: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
    loss, _ = self._loss_and_metrics(observation, action)
    return loss

  def _loss_and_metrics(self, observation, action):
    if self._encoder is not None:
      observation = self._encoder(observation)
    fits_deployed_action = self._loss_name in networks.IMITATION_ERRORS
    mean, log_std = self._actor.mean_and_log_std(observation,
                                                 log_std_on_stopped_features=fits_deployed_action)
    squared_error = networks.deployed_action_error(mean, action)  # the metric, for any loss
    # With 'mse' or 'mae' the likelihood term sees the mean as fixed: it trains the spread only.
    log_likelihood = tf.reduce_mean(networks.tanh_gaussian_log_prob(
        tf.stop_gradient(mean) if fits_deployed_action else mean, log_std, action))
    entropy_proxy = tf.reduce_mean(tf.reduce_sum(log_std, axis=-1))
    loss = -log_likelihood - self._entropy_coefficient * entropy_proxy
    if fits_deployed_action:
      loss += tf.reduce_mean(networks.deployed_action_error(mean, action, self._loss_name))
    metrics = {
        'bc_loss': loss,
        'log_likelihood': log_likelihood,
        'action_mse': (tf.reduce_mean(squared_error)
                       / tf.cast(tf.shape(action)[-1], squared_error.dtype)),
        'log_std_mean': tf.reduce_mean(log_std),
    }
    return loss, metrics

  def _train_step(self, experience: Transition) -> tf_agent.LossInfo:
    variables = self._variables()
    observation = experience.observation
    if self._encoder is not None and self._encoder.config.image_shift:
      observation = augmentation.augment_observation(
          observation, self._encoder.image_fields, self._encoder.config.image_shift,
          self._rng.make_seeds(1)[:, 0])
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(variables)
      loss, metrics = self._loss_and_metrics(observation, experience.action)
    self._optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self._update_policy_average()
    self.train_step_counter.assign_add(1)
    return tf_agent.LossInfo(loss=loss, extra=metrics)

  def _loss(self, experience: Transition, weights=None, training=False) -> tf_agent.LossInfo:
    del training
    if weights is not None:
      raise NotImplementedError('SupervisedAgent does not support per-sample weights.')
    experience = Transition(*experience)
    loss, metrics = self._loss_and_metrics(experience.observation, experience.action)
    return tf_agent.LossInfo(loss=loss, extra=metrics)
