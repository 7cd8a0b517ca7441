"""The actor's start: behaviour cloning on the prior data before reinforcement learning.

RLIF's closed loop always begins from a policy cloned from the demonstrations (the paper's
round 0, and `sim.loop`'s shared initial policy): the RL learner's actor takes over its weights,
then the critics learn from the takeovers. `TrainLoop` does the same for a dataset it trains on
from scratch when the learner's settings ask for it (`actor_warm_start` BC updates), so
`python -m trainer.main` runs the recipe the benchmark measured.
"""

from __future__ import annotations

from typing import Callable

from trainer import learners


def copy_actor(source, target) -> None:
  """`source.actor_network`'s weights into `target.actor_network` (the same layout)."""
  weights = source.actor_network.get_weights()
  if [w.shape for w in target.actor_network.get_weights()] != [w.shape for w in weights]:
    raise ValueError('cannot warm-start: the two actors differ in layout (set the same '
                     'actor_hidden)')
  target.actor_network.set_weights(weights)


def behaviour_cloning_agent(observation_dim: int, action_dim: int, actor_hidden, seed: int):
  """A BC agent (configs/bc.toml) whose actor has `actor_hidden`, the RL actor's layout."""
  settings = learners.load_settings('bc', overrides={'actor_hidden': list(actor_hidden)})
  return learners.LEARNERS['bc'].make_agent(observation_dim, action_dim, seed=seed, **settings)


def warm_start(agent, sample_prior: Callable, num_updates: int, observation_dim: int,
               action_dim: int, actor_hidden, seed: int) -> dict:
  """Trains a BC agent for `num_updates` on batches from `sample_prior()` (prior data only) and
  copies its actor into `agent`. Returns the last BC metrics."""
  bc = behaviour_cloning_agent(observation_dim, action_dim, actor_hidden, seed)
  metrics = {}
  for _ in range(num_updates):
    metrics = bc.train(sample_prior()).extra
  copy_actor(bc, agent)
  return {k: float(v) for k, v in metrics.items()}
