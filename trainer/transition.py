"""The batch the learners consume: one-step transitions formed inside episodes."""

from typing import NamedTuple

import tensorflow as tf


class Transition(NamedTuple):
  """A batch of transitions (s, a, r, s', discount).

  `discount` is 0 on the transition into a true terminal state and 1 otherwise (also at a
  truncation, where the learner must bootstrap); the learner multiplies it by gamma.
  """
  observation: tf.Tensor       # [B, obs_dim] float32
  action: tf.Tensor            # [B, act_dim] float32, in [-1, 1]
  reward: tf.Tensor            # [B] float32
  discount: tf.Tensor          # [B] float32
  next_observation: tf.Tensor  # [B, obs_dim] float32
  demonstrated: tf.Tensor      # [B] float32: the logged action's weight in the behaviour term,
  #                              1 for a demonstration (prior data, an accepted action), the
  #                              loop's `operator_weight` for a human-controlled step, 0 where
  #                              the policy acted (see trainer/pairing.py `demonstrated`)
