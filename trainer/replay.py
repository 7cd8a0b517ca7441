"""Symmetric sampling (RLPD): every batch draws a fixed fraction from prior data and the rest from
intervention rounds, uniformly with replacement inside each pool.

The behaviour term reads each sample's `demonstrated` weight. With `bc_sampling = 'batch'` it
imitates the batch as drawn, so the prior fraction also fixes the demonstrations' share of the
term however much online data has joined. With 'pool' each sample's weight is scaled by how many
transitions of its pool it stands for (pool size / samples drawn from it): the term then weighs
every demonstrated transition of both pools alike, a self-normalised importance-weighted
estimate of imitating the whole pool uniformly, and the operator's share grows with its data.
The critics' batch is the same either way.

The pools live as tensors, and only as tensors (no numpy copy beside them): sampling runs in-graph
with a checkpointable `tf.random.Generator`, and a pool grows (a new round joins) without
retracing the training step. Dict observations are held field by field, camera images as uint8
(each frame twice, as the observation of one transition and the next observation of another).
"""

from __future__ import annotations

import tensorflow as tf

from trainer import pairing
from trainer.transition import Transition


def prior_count(batch_size: int, prior_fraction: float, prior_size: int,
                online_size: int) -> int:
  """How many of `batch_size` samples come from the prior pool.

  round(batch_size * prior_fraction), except that an empty pool gives its share to the other
  (before the first intervention round, training runs on prior data alone).
  """
  if not 0.0 <= prior_fraction <= 1.0:
    raise ValueError(f'prior_fraction must be in [0, 1], got {prior_fraction}')
  if prior_size == 0 and online_size == 0:
    raise ValueError('both sampling pools are empty: the dataset has no transitions yet')
  if prior_size == 0:
    return 0
  if online_size == 0:
    return batch_size
  return int(round(batch_size * prior_fraction))


BC_SAMPLING = ('batch', 'pool')


class MixedReplay:
  """Prior and intervention pools with symmetric sampling."""

  def __init__(self, observation, action_dim: int, prior_fraction: float = 0.5,
               seed: int = 0, operator_weight: float = 1.0, bc_sampling: str = 'batch'):
    """`observation`: the dataset's observation spec, an int D or a dict observation's fields
    (pipeline.schema.ObservationSpec). `operator_weight`: the behaviour-term weight of the
    operator's steps in the online pool (`pairing.demonstrated`). `bc_sampling`: 'batch' or
    'pool' (the module docstring)."""
    self.prior_fraction = float(prior_fraction)
    self.operator_weight = float(operator_weight)
    if bc_sampling not in BC_SAMPLING:
      raise ValueError(f'bc_sampling must be one of {BC_SAMPLING}, got {bc_sampling!r}')
    self.bc_sampling = bc_sampling
    prior_count(1, self.prior_fraction, 1, 1)  # Validates the fraction early.
    self._dims, self._seed = (observation, action_dim), seed
    empty = self._to_tensors(self._pool_arrays(pairing.empty(observation, action_dim), prior=True))
    self._tensors = {'prior': empty, 'online': empty}
    self.generator = tf.random.Generator.from_seed(seed)

  def _pool_arrays(self, transitions: dict, prior: bool) -> dict:
    """What a pool keeps of `transitions`: the `Transition` fields, `demonstrated` derived."""
    arrays = {k: transitions[k] for k in Transition._fields if k != 'demonstrated'}
    arrays['demonstrated'] = pairing.demonstrated(transitions, prior, self.operator_weight)
    return arrays

  @staticmethod
  def _to_tensors(pool: dict) -> Transition:
    return Transition(*(tf.nest.map_structure(tf.constant, pool[k]) for k in Transition._fields))

  def add(self, transitions: dict, prior: bool) -> None:
    """Adds `transitions` (pairing.FIELDS) to the prior or the online pool; whether each action
    is a demonstration, and its weight, follow from the pool and the intervention flags
    (`pairing.demonstrated`)."""
    name = 'prior' if prior else 'online'
    added = self._to_tensors(self._pool_arrays(transitions, prior))
    self._tensors[name] = tf.nest.map_structure(lambda pool, new: tf.concat([pool, new], 0),
                                                self._tensors[name], added)

  def prior_only(self) -> 'MixedReplay':
    """A replay over this one's prior pool alone (e.g. behaviour cloning before RL)."""
    replay = MixedReplay(*self._dims, prior_fraction=1.0, seed=self._seed,
                         operator_weight=self.operator_weight, bc_sampling=self.bc_sampling)
    replay._tensors['prior'] = self._tensors['prior']
    return replay

  def size(self, prior: bool) -> int:
    return int(self._tensors['prior' if prior else 'online'].reward.shape[0])

  def sample(self, batch_size: int, num_batches: int = 1) -> Transition:
    """[num_batches * batch_size] transitions; each consecutive chunk of `batch_size` holds the
    configured mix (the learner splits the batch into per-critic-update chunks)."""
    n_prior = prior_count(batch_size, self.prior_fraction, self.size(True), self.size(False))
    return _sample(self._tensors['prior'], self._tensors['online'], self.generator,
                   n_prior, batch_size - n_prior, num_batches, self.bc_sampling == 'pool')


def _draw(pool: Transition, generator: tf.random.Generator, count: int,
          num_batches: int, pool_weights: bool) -> Transition:
  size = tf.shape(pool.reward, out_type=tf.int64)[0]
  index = generator.uniform([num_batches, count], maxval=tf.maximum(size, 1), dtype=tf.int64)
  drawn = tf.nest.map_structure(lambda x: tf.gather(x, index), pool)
  if pool_weights:  # each sample stands for size / count transitions of its pool
    stands_for = tf.cast(size, tf.float32) / float(count)
    drawn = drawn._replace(demonstrated=drawn.demonstrated * stands_for)
  return drawn


@tf.function(reduce_retracing=True)
def _sample(prior: Transition, online: Transition, generator: tf.random.Generator,
            n_prior: int, n_online: int, num_batches: int, pool_weights: bool) -> Transition:
  parts = []
  if n_prior:
    parts.append(_draw(prior, generator, n_prior, num_batches, pool_weights))
  if n_online:
    parts.append(_draw(online, generator, n_online, num_batches, pool_weights))
  # [num_batches, n_prior + n_online, ...] -> [num_batches * batch_size, ...]
  return tf.nest.map_structure(
      lambda *xs: tf.reshape(tf.concat(xs, axis=1),
                             tf.concat([[-1], tf.shape(xs[0])[2:]], axis=0)), *parts)




