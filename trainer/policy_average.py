"""The deployed policy as an exponential moving average of the actor's weights.

A learner that keeps training on a few thousand transitions moves its actor from update to
update. An average of the weights over the last ~1/(1 - decay) actor updates (Polyak averaging,
as the target critics are; the EMA policy of Diffusion Policy's training) deploys where the
actor has been rather than where its last minibatch left it. The learner keeps training the actor
itself: its losses, the TD targets' a' ~ pi(s') and the warm start read the online actor; only
`policy`, `collect_policy` and what is exported act with the average.

average <- decay * average + (1 - decay) * online, after each actor update; decay 0 is the online
actor itself (no copy is made). With dict observations only the actor head is averaged; the
encoder it reads is shared.
"""

from __future__ import annotations

import tensorflow as tf


def check_decay(decay: float) -> float:
  decay = float(decay)
  if not 0.0 <= decay < 1.0:
    raise ValueError(f'policy_average_decay must be in [0, 1), got {decay}')
  return decay


class PolicyAverage(tf.Module):
  """An averaged copy of `network` (a built TF-Agents network): `network` is what acts, `update`
  moves it toward the online weights, `reset` makes it equal to them."""

  def __init__(self, online, decay: float, name: str = 'PolicyAverage'):
    super().__init__(name=name)
    self._decay = check_decay(decay)
    if not self._decay:
      raise ValueError('a PolicyAverage needs decay > 0 (decay 0 acts with the online actor)')
    self._online = online
    self.network = online.copy(name=f'{online.name}Average')
    # The copy has the same layout; its variables exist once it is built with the online spec.
    self.network.create_variables(online.input_tensor_spec)
    self.reset()

  def reset(self) -> None:
    """The average := the online weights (after a warm start or a copy into the actor)."""
    for average, online in zip(self.network.variables, self._online.variables):
      average.assign(online)

  def update(self) -> None:
    """One averaging step; call it after each update of the online actor."""
    for average, online in zip(self.network.variables, self._online.variables):
      average.assign(self._decay * average + (1.0 - self._decay) * online)
