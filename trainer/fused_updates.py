"""Optimizer and target-network updates as one kernel per variable, on Keras' own state.

Keras' `Adam.apply_gradients` builds ~10 elementwise graph ops per variable; `fused_adam_apply`
runs TensorFlow's `ResourceApplyAdam` kernel instead, on the optimizer's own slot variables and
step counter, so checkpoints are the same variables in either mode and restore both ways. The
update is Keras' exactly (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1);
v += (g^2 - v)(1 - b2); w -= lr_t m / (sqrt(v) + eps)), up to float rounding.
`polyak_update` is target <- target - tau (target - online) through `ResourceApplyGradientDescent`:
2 ops per variable instead of 4.
"""

from __future__ import annotations

import tensorflow as tf


def check_fusable(optimizer: tf.keras.optimizers.Optimizer) -> None:
  """Raises unless `optimizer` is a plain Keras Adam whose update `fused_adam_apply` reproduces."""
  if not isinstance(optimizer, tf.keras.optimizers.Adam):
    raise TypeError(f'fused updates need tf.keras.optimizers.Adam, got {type(optimizer)}')
  if (optimizer.amsgrad or optimizer.weight_decay or optimizer.clipnorm or optimizer.clipvalue
      or optimizer.global_clipnorm or optimizer.use_ema):
    raise ValueError('fused Adam reproduces plain Adam only (no amsgrad, weight decay, '
                     'clipping or EMA)')


def fused_adam_apply(optimizer: tf.keras.optimizers.Adam, grads_and_vars) -> None:
  """One Adam step for every (gradient, variable), then the optimizer's step counter + 1."""
  step = tf.cast(optimizer.iterations + 1, tf.float32)
  beta_1 = tf.cast(optimizer.beta_1, tf.float32)
  beta_2 = tf.cast(optimizer.beta_2, tf.float32)
  beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
  learning_rate = tf.cast(optimizer.learning_rate, tf.float32)
  epsilon = tf.cast(optimizer.epsilon, tf.float32)
  for gradient, variable in grads_and_vars:
    index = optimizer._index_dict[optimizer._var_key(variable)]  # pylint: disable=protected-access
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=optimizer._momentums[index].handle,  # pylint: disable=protected-access
        v=optimizer._velocities[index].handle,  # pylint: disable=protected-access
        beta1_power=beta_1_power, beta2_power=beta_2_power, lr=learning_rate, beta1=beta_1,
        beta2=beta_2, epsilon=epsilon, grad=gradient)
  optimizer.iterations.assign_add(1)


def polyak_update(targets, onlines, tau: float) -> None:
  """target <- (1 - tau) target + tau online, for each pair."""
  for target, online in zip(targets, onlines):
    tf.raw_ops.ResourceApplyGradientDescent(var=target.handle, alpha=tf.constant(tau, tf.float32),
                                            delta=target - online)
