"""The TF-Agents wiring shared by the learners: a `TFAgent` that trains on `Transition` batches
and acts with a tanh-Gaussian actor network's policies (for dict observations, the encoder then
the actor: trainer/encoder.py `EncodedActorNetwork`)."""

from typing import Optional

import tensorflow as tf
from tf_agents.agents import tf_agent

from trainer import networks
from trainer import policy_average as policy_average_lib
from trainer.transition import Transition


class TransitionAgent(tf_agent.TFAgent):
  """Subclasses build their networks, then call `_finish_init`, and implement `_train_step`.

  The policies act with `deployed_actor_network`: the trained actor, or an average of its weights
  (`_average_actor`; trainer/policy_average.py) that the subclass moves after each actor update
  (`_update_policy_average`)."""

  _policy_average = None

  def _average_actor(self, actor: networks.TanhGaussianActorNetwork, decay: float):
    """The actor the policies will act with: `actor` itself (decay 0) or its weights' moving
    average with `decay` per actor update."""
    decay = policy_average_lib.check_decay(decay)
    if decay:
      self._policy_average = policy_average_lib.PolicyAverage(actor, decay)
      return self._policy_average.network
    return actor

  @property
  def deployed_actor_network(self) -> networks.TanhGaussianActorNetwork:
    """The actor whose weights `policy` and `collect_policy` act with (and exported policies
    hold): the trained `actor_network`, or its average when `policy_average_decay` > 0."""
    if self._policy_average is None:
      return self.actor_network
    return self._policy_average.network

  def reset_policy_average(self) -> None:
    """Makes the deployed actor equal to the trained one; for whoever sets the actor's weights
    from outside (trainer/warm_start.py `copy_actor`). Nothing to do without an average."""
    if self._policy_average is not None:
      self._policy_average.reset()

  def _update_policy_average(self) -> None:
    if self._policy_average is not None:
      self._policy_average.update()

  def _finish_init(self, time_step_spec, action_spec, actor,
                   train_step_counter: Optional[tf.Variable], use_xla: bool) -> None:
    """`actor`: the policy's network on the observation itself (a `TanhGaussianActorNetwork`,
    or an `EncodedActorNetwork` for dict observations)."""
    if train_step_counter is None:
      train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name='train_step')
    policy, collect_policy = networks.actor_policies(time_step_spec, action_spec, actor)
    tf_agent.TFAgent.__init__(
        self, time_step_spec, action_spec, policy, collect_policy,
        train_sequence_length=None, num_outer_dims=1,
        training_data_spec=networks.transition_spec(time_step_spec, action_spec),
        train_step_counter=train_step_counter)
    self._train_step_fn = tf.function(self._train_step, jit_compile=use_xla)

  @classmethod
  def from_dims(cls, observation, action_dim: int, **kwargs):
    """An agent for a dataset's observation spec (an int D for flat float32 observations, or the
    fields of a dict observation: `networks.observation_tensor_spec`) and actions in
    [-1, 1]^action_dim."""
    time_step_spec, action_spec = networks.specs_from_dims(observation, action_dim)
    return cls(time_step_spec, action_spec, **kwargs)

  def _train_step(self, experience: Transition) -> tf_agent.LossInfo:
    raise NotImplementedError

  def _initialize(self):
    return tf.no_op()

  def _train(self, experience: Transition, weights=None) -> tf_agent.LossInfo:
    if weights is not None:
      raise NotImplementedError(f'{type(self).__name__} does not support per-sample weights.')
    return self._train_step_fn(Transition(*experience))
