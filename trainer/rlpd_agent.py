"""RLPD: SAC with a LayerNorm critic ensemble and a high update-to-data ratio, as a TF-Agents agent.

The recipe (Ball et al. 2023, used by the RLIF authors) on top of SAC:
  * E critics (default 10); the TD target takes the min over a fresh random subset of M (default 2)
    of the E target critics, evaluated at a' ~ pi(s') from the current actor;
  * LayerNorm in every critic hidden layer;
  * G critic updates per train call (`critic_updates_per_step`), each on its own minibatch and each
    followed by a Polyak target update, then one actor and one temperature update.

One `train(experience)` call consumes a `Transition` batch of leading size G*B, split into G chunks
of B in order, and runs all of the above in one compiled graph. The actor and temperature updates
use the last chunk, as RLPD does.

Dict observations (camera images and vectors; the pixel learner, as in DrQ and RLPD's pixel agent):
one convolutional encoder (trainer/encoder.py) turns an observation into features that the whole
critic ensemble and the actor take. The critic loss trains it; the actor sees its features through
`tf.stop_gradient`; the target critics have their own encoder, Polyak-averaged with them. Each
train call first shifts every image of its batch at random (trainer/augmentation.py). With a flat
observation none of this exists and the graph is the one it always was.
"""

import math
from typing import Mapping, Optional, Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import time_step as ts

from trainer import augmentation
from trainer import encoder as encoder_lib
from trainer import fused_updates as fused_updates_lib
from trainer import networks
from trainer import transition_agent
from trainer.transition import Transition

METRIC_NAMES = ('critic_loss', 'actor_loss', 'temperature_loss', 'temperature', 'entropy',
                'q_mean', 'q_std', 'target_q_mean')
BC_ACTIONS = ('all', 'demonstrated')
_CRITIC_METRIC_NAMES = ('critic_loss', 'q_mean', 'q_std', 'target_q_mean')


class RlpdAgent(transition_agent.TransitionAgent):
  """SAC with a critic ensemble (RLPD). Losses are public methods so they can be checked by hand.

  Loss conventions (all scalars):
    critic_loss      = mean over critics e and batch of (Q_e(s, a) - y)^2  (no 1/2 factor), with
                       y = stop_grad(r + gamma * discount * (min_{e in subset} Qtarget_e(s', a')
                                                             [- alpha * log pi(a'|s')]))
                       (the bracket only when `backup_entropy`);
    actor_loss       = mean_batch(alpha * log pi(a|s) - mean_{all E} Q_e(s, a)), a reparameterized;
    temperature_loss = mean_batch(-log_alpha * stop_grad(log pi(a|s) + target_entropy)).
  The temperature update of a train call reuses the log pi of the actor update's sample.

  `train` returns a `LossInfo` whose `loss` is the sum of the three losses and whose `extra` is a
  dict of METRIC_NAMES, all from the last chunk: `temperature` is the alpha the losses used,
  `entropy` is -mean log pi(a|s), `q_std` the std across the ensemble averaged over the batch,
  `target_q_mean` the mean TD target y. `train_step_counter` grows by one per train call.
  """

  def __init__(self,
               time_step_spec: ts.TimeStep,
               action_spec,
               *,
               num_critics: int = 10,
               num_min_critics: int = 2,
               critic_hidden: Sequence[int] = (256, 256, 256),
               actor_hidden: Sequence[int] = (256, 256, 256),
               gamma: float = 0.99,
               tau: float = 0.005,
               critic_updates_per_step: int = 1,
               backup_entropy: bool = False,
               initial_temperature: float = 1.0,
               target_entropy: Optional[float] = None,
               critic_learning_rate: float = 3e-4,
               actor_learning_rate: float = 3e-4,
               temperature_learning_rate: float = 3e-4,
               actor_update_after: int = 0,
               bc_weight: float = 0.0,
               bc_actions: str = 'all',
               bc_error: str = 'mse',
               actor_pessimism: float = 0.0,
               reward_scale: float = 1.0,
               policy_average_decay: float = 0.0,
               fused_updates: bool = True,
               encoder: Optional[Mapping] = None,
               use_xla: bool = False,
               seed: Optional[int] = None,
               train_step_counter: Optional[tf.Variable] = None,
               name: str = 'RlpdAgent'):
    """Builds the networks, optimizers and policies.

    `target_entropy` defaults to -|A|/2 (RLPD). `use_xla` compiles the train step with XLA
    `actor_update_after` delays the actor and temperature updates until that many train calls
    have updated the critics (0, RLPD's recipe: from the first call). A warm-started actor (the
    simulation loop starts every learner from the same behaviour-cloning policy) is otherwise
    pushed around by the gradients of untrained critics before they rate anything.
    `bc_weight` > 0 adds a behaviour term to the actor loss in the manner of TD3+BC (Fujimoto &
    Gu 2021): bc_weight * mean_batch sum_dims (tanh(mean(s)) - a)^2 over the batch's logged
    actions; 0 (the default) is RLPD's recipe. It keeps the actor near the logged actions when
    the critics, trained on little data, have action-gradients that point off the data.
    `bc_actions` says which logged actions the term pulls toward: 'all' (TD3+BC: every sample
    of the batch) or 'demonstrated' (the samples whose `Transition.demonstrated` weight is > 0,
    prior data, human-controlled steps and accepted actions; the mean is weighted by it, 0 when a
    batch has none), so the policy's own actions that led to a takeover are not imitated.
    `bc_error` 'mae' uses the absolute error instead of the squared one (the median of the
    logged actions, not their mean; networks.deployed_action_error).
    `actor_pessimism` k rates the actor's action by mean_e Q_e - k * std_e Q_e over the ensemble
    instead of the mean (RLPD, k = 0): the critics agree where they were fit and disagree off the
    data, so k > 0 keeps the actor where its critics know the value (SAC-N / EDAC's argument).
    `reward_scale` multiplies the logged rewards in the TD target: 1 is the recipe; 0 is a
    control that keeps everything else and ignores the rewards (the RLIF rule's -1s), to measure
    how much of what the learner gains comes from the takeover signal.
    `policy_average_decay` > 0: `policy` and `collect_policy` act with a moving average of the
    actor's weights, moved after each actor update (trainer/policy_average.py); the losses, the
    TD targets' a' ~ pi(s') and the warm start use the trained actor. 0: the actor itself.
    `fused_updates` applies Adam and the Polyak target update with one TensorFlow kernel per
    variable (trainer/fused_updates.py; same variables, same math) instead of Keras' per-op
    graph; False is Keras' `apply_gradients` and a plain assign.
    `encoder` (trainer/encoder.py `EncoderConfig` fields) lays out the pixel encoder of a dict
    observation; ignored for a flat one.
    `use_xla` compiles the train step with XLA
    (jit_compile); off by default because on CPU the plain graph was ~10% faster
    (benchmarks/trainer_benchmark.py). XLA draws different random numbers for the same seed.
    `seed` fixes network initialization and every random draw of `train` (a stateful generator
    that is part of the checkpoint); None means random.
    """
    tf.Module.__init__(self, name=name)
    action_dim = networks.check_specs(time_step_spec, action_spec)
    if not 1 <= num_min_critics <= num_critics:
      raise ValueError(f'need 1 <= num_min_critics <= num_critics, got {num_min_critics}, '
                       f'{num_critics}')
    if critic_updates_per_step < 1:
      raise ValueError(f'critic_updates_per_step must be >= 1, got {critic_updates_per_step}')
    self._num_critics = num_critics
    self._num_min_critics = num_min_critics
    self._gamma = gamma
    self._tau = tau
    self._critic_updates_per_step = critic_updates_per_step
    self._actor_update_after = int(actor_update_after)
    self._bc_weight = float(bc_weight)
    if bc_actions not in BC_ACTIONS:
      raise ValueError(f'bc_actions must be one of {BC_ACTIONS}, got {bc_actions!r}')
    self._bc_actions = bc_actions
    if bc_error not in networks.IMITATION_ERRORS:
      raise ValueError(f'bc_error must be one of {networks.IMITATION_ERRORS}, got {bc_error!r}')
    self._bc_error = bc_error
    if actor_pessimism < 0:
      raise ValueError(f'actor_pessimism must be >= 0, got {actor_pessimism}')
    self._actor_pessimism = float(actor_pessimism)
    self._reward_scale = float(reward_scale)
    self._backup_entropy = backup_entropy
    self._fused_updates = bool(fused_updates)
    self._target_entropy = (-action_dim / 2.0 if target_entropy is None else float(target_entropy))

    observation_spec = time_step_spec.observation
    # What the critics and the actor take: the observation itself, or the encoder's features.
    self._encoder = encoder_lib.encoder_for(observation_spec, encoder, seed)
    self._target_encoder = encoder_lib.encoder_for(observation_spec, encoder, seed,
                                                   name='TargetEncoder')
    feature_spec = observation_spec if self._encoder is None else self._encoder.output_spec
    self._critic = networks.EnsembleCriticNetwork(
        (feature_spec, action_spec), num_critics, critic_hidden, seed=seed,
        name='EnsembleCritic')
    self._target_critic = networks.EnsembleCriticNetwork(
        (feature_spec, action_spec), num_critics, critic_hidden, seed=seed,
        name='TargetEnsembleCritic')
    self._actor = networks.TanhGaussianActorNetwork(
        feature_spec, action_spec, actor_hidden,
        seed=None if seed is None else seed + 1000, name='Actor')
    self._log_alpha = tf.Variable(math.log(initial_temperature), dtype=tf.float32,
                                  name='log_alpha')
    # Targets start equal to the online critics. This happens here rather than in `initialize`
    # so that calling `initialize()` after a checkpoint restore cannot overwrite restored targets.
    self._polyak_update(tau=1.0)

    self._critic_optimizer = _adam(critic_learning_rate, self._critic_variables())
    self._actor_optimizer = _adam(actor_learning_rate, self._actor.trainable_variables)
    self._temperature_optimizer = _adam(temperature_learning_rate, [self._log_alpha])
    if self._fused_updates:
      for optimizer in (self._critic_optimizer, self._actor_optimizer,
                        self._temperature_optimizer):
        fused_updates_lib.check_fusable(optimizer)
    self._rng = (tf.random.Generator.from_non_deterministic_state() if seed is None
                 else tf.random.Generator.from_seed(seed))

    deployed = self._average_actor(self._actor, policy_average_decay)
    self._finish_init(time_step_spec, action_spec,
                      encoder_lib.acting_network(self._encoder, deployed, observation_spec),
                      train_step_counter, use_xla)

  # ------------------------------------------------------------------------------------------
  # What a caller (or a checkpoint) may want to reach.

  @property
  def critic_network(self) -> networks.EnsembleCriticNetwork:
    return self._critic

  @property
  def target_critic_network(self) -> networks.EnsembleCriticNetwork:
    return self._target_critic

  @property
  def actor_network(self) -> networks.TanhGaussianActorNetwork:
    """The actor on features (the observation itself when flat; see `encoder`)."""
    return self._actor

  @property
  def encoder(self) -> Optional[encoder_lib.ObservationEncoder]:
    """The encoder of dict observations that the critics train and the actor reads; None for a
    flat observation."""
    return self._encoder

  @property
  def target_encoder(self) -> Optional[encoder_lib.ObservationEncoder]:
    """The target critics' encoder (Polyak-averaged with them); None for a flat observation."""
    return self._target_encoder

  @property
  def log_alpha(self) -> tf.Variable:
    return self._log_alpha

  @property
  def critic_optimizer(self) -> tf.keras.optimizers.Optimizer:
    return self._critic_optimizer

  @property
  def actor_optimizer(self) -> tf.keras.optimizers.Optimizer:
    return self._actor_optimizer

  @property
  def temperature_optimizer(self) -> tf.keras.optimizers.Optimizer:
    return self._temperature_optimizer

  @property
  def target_entropy(self) -> float:
    return self._target_entropy

  @property
  def critic_updates_per_step(self) -> int:
    return self._critic_updates_per_step

  @property
  def gamma(self) -> float:
    """The TD target's discount per step (n-step data fold its powers into `discount`)."""
    return self._gamma

  # ------------------------------------------------------------------------------------------
  # Losses. `seed` is a [2] int tensor for the stateless draws; None draws one from the agent.

  def critic_loss(self, transition: Transition, target_members: Optional[tf.Tensor] = None,
                  seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The critic loss on one batch (see the class docstring).

    a' is drawn with noise `tf.random.stateless_normal([B, A], seed)`; `target_members` ([M] int)
    fixes the subset of target critics, otherwise it is drawn too.
    """
    seed = self._draw_seed() if seed is None else seed
    if target_members is None:
      target_members = self._draw_target_members(tf.random.experimental.stateless_fold_in(seed, 1),
                                                 count=1)[0]
    next_action, next_log_prob = self._sample_actions(transition.next_observation, seed)
    loss, _ = self._critic_loss_and_metrics(transition, next_action, next_log_prob,
                                            target_members)
    return loss

  def actor_loss(self, observation: tf.Tensor, seed: Optional[tf.Tensor] = None,
                 data_action: Optional[tf.Tensor] = None,
                 demonstrated: Optional[tf.Tensor] = None) -> tf.Tensor:
    """mean(alpha * log pi(a|s) - (mean_e Q_e(s, a) - k std_e Q_e(s, a)) over all E critics), k =
    `actor_pessimism`; eps from `seed`; plus,
    with `bc_weight` > 0, bc_weight * sum_b w_b sum_dims (tanh(mean(s_b)) - data_action_b)^2 /
    sum_b w_b (|.| for `bc_error` 'mae'), where w = 1 (`bc_actions` 'all') or w = `demonstrated`,
    each action's weight ('demonstrated')."""
    loss, _ = self._actor_loss_and_log_prob(observation,
                                            self._draw_seed() if seed is None else seed,
                                            data_action, demonstrated)
    return loss

  def temperature_loss(self, observation: tf.Tensor,
                       seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """mean(-log_alpha * stop_grad(log pi(a|s) + target_entropy)), eps ~ stateless_normal(seed)."""
    _, log_prob = self._sample_actions(observation, self._draw_seed() if seed is None else seed)
    return self._temperature_loss_from_log_prob(log_prob)

  def _critic_loss_and_metrics(self, transition, next_action, next_log_prob, target_members):
    next_q, _ = self._target_critic((self._target_features(transition.next_observation),
                                     next_action), members=target_members)
    next_value = tf.reduce_min(next_q, axis=0)
    if self._backup_entropy:
      next_value -= tf.exp(self._log_alpha) * next_log_prob
    target_q = tf.stop_gradient(
        self._reward_scale * transition.reward
        + self._gamma * transition.discount * next_value)
    q, _ = self._critic((self._critic_features(transition.observation), transition.action))
    loss = tf.reduce_mean(tf.square(q - target_q))
    metrics = {
        'critic_loss': loss,
        'q_mean': tf.reduce_mean(q),
        'q_std': tf.reduce_mean(tf.math.reduce_std(q, axis=0)),
        'target_q_mean': tf.reduce_mean(target_q),
    }
    return loss, metrics

  def _actor_loss_and_log_prob(self, observation, seed, data_action=None, demonstrated=None):
    features = self._actor_features(observation)
    mean, log_std = self._actor.mean_and_log_std(features)
    action, log_prob = networks.tanh_gaussian_sample(mean, log_std, seed)
    q, _ = self._critic((features, action))
    alpha = tf.stop_gradient(tf.exp(self._log_alpha))
    value = tf.reduce_mean(q, axis=0)
    if self._actor_pessimism > 0:
      value -= self._actor_pessimism * tf.math.reduce_std(q, axis=0)
    loss = tf.reduce_mean(alpha * log_prob - value)
    if self._bc_weight > 0 and data_action is not None:
      error = networks.deployed_action_error(mean, data_action, self._bc_error)
      if self._bc_actions == 'demonstrated':
        if demonstrated is None:
          raise ValueError("bc_actions='demonstrated' needs the batch's `demonstrated` flags")
        loss += self._bc_weight * tf.math.divide_no_nan(
            tf.reduce_sum(demonstrated * error), tf.reduce_sum(demonstrated))
      else:
        loss += self._bc_weight * tf.reduce_mean(error)
    return loss, log_prob

  def _temperature_loss_from_log_prob(self, log_prob):
    return tf.reduce_mean(-self._log_alpha * tf.stop_gradient(log_prob + self._target_entropy))

  def _sample_actions(self, observation, seed):
    mean, log_std = self._actor.mean_and_log_std(self._actor_features(observation))
    return networks.tanh_gaussian_sample(mean, log_std, seed)

  # What the networks take: a flat observation itself; a dict observation's encoder features.
  def _critic_features(self, observation):
    """The online critics' input; the critic loss's gradient reaches the encoder."""
    return observation if self._encoder is None else self._encoder(observation)

  def _target_features(self, observation):
    return observation if self._target_encoder is None else self._target_encoder(observation)

  def _actor_features(self, observation):
    """The actor's input (and the critics' in the actor loss): the encoder's features without
    their gradient, so only the critic loss shapes the encoder (DrQ, RLPD's pixel agent)."""
    return (observation if self._encoder is None
            else tf.stop_gradient(self._encoder(observation)))

  def _augment(self, experience: Transition) -> Transition:
    """The batch with every image of observation and next observation randomly shifted."""
    pad, fields = self._encoder.config.image_shift, self._encoder.image_fields
    if not pad or not fields:
      return experience
    seed = self._draw_seed()
    return experience._replace(
        observation=augmentation.augment_observation(
            experience.observation, fields, pad, tf.random.experimental.stateless_fold_in(seed, 0)),
        next_observation=augmentation.augment_observation(
            experience.next_observation, fields, pad,
            tf.random.experimental.stateless_fold_in(seed, 1)))

  def _draw_seed(self) -> tf.Tensor:
    return self._rng.make_seeds(1)[:, 0]

  def _draw_target_members(self, seed, count: int) -> tf.Tensor:
    """[count, M] indices: for each row, M distinct critics out of E, uniformly at random."""
    noise = tf.random.stateless_uniform([count, self._num_critics], seed)
    return tf.argsort(noise, axis=-1)[:, :self._num_min_critics]

  # ------------------------------------------------------------------------------------------
  # Updates.

  def _critic_variables(self) -> list:
    """What the critic loss trains: the critics, and the encoder of dict observations."""
    if self._encoder is None:
      return self._critic.trainable_variables
    return self._critic.trainable_variables + self._encoder.trainable_variables

  def _target_critic_variables(self) -> list:
    """The targets of `_critic_variables`, in the same order."""
    if self._target_encoder is None:
      return self._target_critic.trainable_variables
    return self._target_critic.trainable_variables + self._target_encoder.trainable_variables

  def _polyak_update(self, tau: float):
    targets, onlines = self._target_critic_variables(), self._critic_variables()
    if self._fused_updates and tau < 1.0:
      fused_updates_lib.polyak_update(targets, onlines, tau)
      return
    for target, online in zip(targets, onlines):
      target.assign(tau * online + (1.0 - tau) * target)

  def _apply(self, optimizer, gradients, variables):
    if self._fused_updates:
      fused_updates_lib.fused_adam_apply(optimizer, zip(gradients, variables))
    else:
      optimizer.apply_gradients(zip(gradients, variables))

  def _critic_update(self, transition, next_action, next_log_prob, target_members):
    variables = self._critic_variables()
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(variables)
      loss, metrics = self._critic_loss_and_metrics(transition, next_action, next_log_prob,
                                                    target_members)
    self._apply(self._critic_optimizer, tape.gradient(loss, variables), variables)
    self._polyak_update(self._tau)
    return metrics

  def _actor_and_temperature_losses(self, observation, seed, data_action, demonstrated):
    """The two losses without updating (during the critic warm-up)."""
    actor_loss, log_prob = self._actor_loss_and_log_prob(observation, seed, data_action,
                                                         demonstrated)
    return actor_loss, self._temperature_loss_from_log_prob(log_prob), log_prob

  def _actor_and_temperature_update(self, observation, seed, data_action, demonstrated):
    actor_variables = self._actor.trainable_variables
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(actor_variables)
      actor_loss, log_prob = self._actor_loss_and_log_prob(observation, seed, data_action,
                                                           demonstrated)
    self._apply(self._actor_optimizer, tape.gradient(actor_loss, actor_variables),
                actor_variables)
    self._update_policy_average()

    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(self._log_alpha)
      temperature_loss = self._temperature_loss_from_log_prob(log_prob)
    self._apply(self._temperature_optimizer, [tape.gradient(temperature_loss, self._log_alpha)],
                [self._log_alpha])
    return actor_loss, temperature_loss, log_prob

  def _train_step(self, experience: Transition) -> tf_agent.LossInfo:
    if self._encoder is not None:
      experience = self._augment(experience)
    num_chunks = self._critic_updates_per_step
    chunks = tf.nest.map_structure(
        lambda t: tf.reshape(t, [num_chunks, -1] + t.shape[1:].as_list()), experience)
    seeds = self._rng.make_seeds(3)
    # The actor is fixed during the critic updates, so a' for all G chunks is one forward pass.
    next_action, next_log_prob = self._sample_actions(experience.next_observation, seeds[:, 0])
    next_action = tf.reshape(next_action, [num_chunks, -1, next_action.shape[-1]])
    next_log_prob = tf.reshape(next_log_prob, [num_chunks, -1])
    target_members = self._draw_target_members(seeds[:, 1], num_chunks)

    # A graph loop rather than G unrolled copies: same speed, much shorter tracing/XLA compile.
    def critic_update(g, unused_metrics):
      chunk = tf.nest.map_structure(lambda t: t[g], chunks)
      return g + 1, self._critic_update(chunk, next_action[g], next_log_prob[g],
                                        target_members[g])

    no_metrics = {name: tf.constant(0.0) for name in _CRITIC_METRIC_NAMES}
    _, metrics = tf.while_loop(lambda g, _: g < num_chunks, critic_update,
                               (tf.constant(0), no_metrics), parallel_iterations=1)
    metrics = dict(metrics)

    actor_args = (tf.nest.map_structure(lambda t: t[-1], chunks.observation), seeds[:, 2],
                  chunks.action[-1], chunks.demonstrated[-1])
    alpha = tf.exp(self._log_alpha)
    if self._actor_update_after > 0:
      actor_loss, temperature_loss, log_prob = tf.cond(
          self.train_step_counter >= self._actor_update_after,
          lambda: self._actor_and_temperature_update(*actor_args),
          lambda: self._actor_and_temperature_losses(*actor_args))
    else:
      actor_loss, temperature_loss, log_prob = self._actor_and_temperature_update(*actor_args)

    self.train_step_counter.assign_add(1)
    metrics.update(actor_loss=actor_loss, temperature_loss=temperature_loss, temperature=alpha,
                   entropy=-tf.reduce_mean(log_prob))
    total = metrics['critic_loss'] + actor_loss + temperature_loss
    return tf_agent.LossInfo(loss=total, extra={k: metrics[k] for k in METRIC_NAMES})

  # ------------------------------------------------------------------------------------------
  # TFAgent hooks.

  def _loss(self, experience: Transition, weights=None, training=False) -> tf_agent.LossInfo:
    """The three losses on `experience` as one chunk, without updating anything."""
    del training
    if weights is not None:
      raise NotImplementedError('RlpdAgent does not support per-sample weights.')
    experience = Transition(*experience)
    seeds = self._rng.make_seeds(3)
    critic_loss = self.critic_loss(experience, seed=seeds[:, 0])
    actor_loss = self.actor_loss(experience.observation, seed=seeds[:, 1],
                                 data_action=experience.action,
                                 demonstrated=experience.demonstrated)
    temperature_loss = self.temperature_loss(experience.observation, seed=seeds[:, 2])
    return tf_agent.LossInfo(
        loss=critic_loss + actor_loss + temperature_loss,
        extra={'critic_loss': critic_loss, 'actor_loss': actor_loss,
               'temperature_loss': temperature_loss})


def _adam(learning_rate: float, variables) -> tf.keras.optimizers.Optimizer:
  # Slots are built now: a train step compiled with XLA must not create variables.
  optimizer = tf.keras.optimizers.Adam(learning_rate, jit_compile=False)
  optimizer.build(variables)
  return optimizer
