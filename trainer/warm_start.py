"""The actor's start: behaviour cloning on the prior data before reinforcement learning.

RLIF's closed loop always begins from a policy cloned from the demonstrations (the paper's
round 0, and `sim.loop`'s shared initial policy): the RL learner's actor takes over its weights,
then the critics learn from the takeovers. `TrainLoop` does the same for a dataset it trains on
from scratch when the learner's settings ask for it (`actor_warm_start` BC updates), so
`python -m trainer.main` runs the recipe the benchmark measured.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

from trainer import learners


def _check_layout(source, targets, what: str) -> None:
  shapes = [w.shape for w in source.get_weights()]
  for target in targets:
    if [w.shape for w in target.get_weights()] != shapes:
      raise ValueError(f'cannot warm-start: the two {what} differ in layout (set the same '
                       f'{"actor_hidden" if what == "actors" else "encoder"})')


def copy_actor(source, target) -> None:
  """The weights `source` deploys (its `deployed_actor_network`: the actor, or the average of
  its weights that its policy acts with) into `target.actor_network` (the same layout), and
  `target`'s own average, if it has one, restarted from them. With dict
  observations the actor reads an encoder's features, so `source.encoder` is copied too: into
  `target.encoder` and, for an RL learner, its target critics' `target_encoder` (which starts
  equal to the online one, as at construction). Nothing is copied unless everything fits."""
  source_encoder, target_encoder = (getattr(source, 'encoder', None),
                                    getattr(target, 'encoder', None))
  if (source_encoder is None) != (target_encoder is None):
    raise ValueError('cannot warm-start: one agent encodes dict observations, the other not')
  source_actor = getattr(source, 'deployed_actor_network', source.actor_network)
  pairs = [(source_actor, [target.actor_network], 'actors')]
  if source_encoder is not None:
    encoders = [target_encoder]
    if getattr(target, 'target_encoder', None) is not None:
      encoders.append(target.target_encoder)
    pairs.append((source_encoder, encoders, 'encoders'))
  for source_network, targets, what in pairs:
    _check_layout(source_network, targets, what)
  for source_network, targets, _ in pairs:
    weights = source_network.get_weights()
    for target_network in targets:
      target_network.set_weights(weights)
  if hasattr(target, 'reset_policy_average'):
    target.reset_policy_average()


def behaviour_cloning_agent(observation, action_dim: int, actor_hidden=None, seed: int = 0,
                            encoder: Optional[Mapping] = None):
  """A BC agent (configs/bc.toml); `actor_hidden` and `encoder`, when given, override the file's
  so that its actor has the RL learner's layout. `observation`: the dataset's observation spec
  (an int D, or a dict observation's fields). Also what restores a saved BC agent (sim.loop's
  shared initial policy)."""
  overrides = {}
  if actor_hidden is not None:
    overrides['actor_hidden'] = list(actor_hidden)
  if encoder is not None:
    overrides['encoder'] = dict(encoder)
  settings = learners.load_settings('bc', overrides=overrides)
  return learners.LEARNERS['bc'].make_agent(observation, action_dim, seed=seed, **settings)


def warm_start(agent, sample_prior: Callable, num_updates: int, observation, action_dim: int,
               actor_hidden, seed: int, encoder: Optional[Mapping] = None) -> dict:
  """Trains a BC agent for `num_updates` on batches from `sample_prior()` (prior data only) and
  copies its actor (and encoder, for dict observations) into `agent`. Returns the last BC
  metrics."""
  bc = behaviour_cloning_agent(observation, action_dim, actor_hidden, seed, encoder)
  metrics = {}
  for _ in range(num_updates):
    metrics = bc.train(sample_prior()).extra
  copy_actor(bc, agent)
  return {k: float(v) for k, v in metrics.items()}
