"""The actor's start from behaviour cloning: with dict observations the encoder comes along."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from pipeline import schema as sc
from trainer import warm_start
from trainer.rlpd_agent import RlpdAgent
from trainer.supervised_agent import SupervisedAgent

SPEC = (sc.ObservationField('camera', (12, 12, 3)), sc.ObservationField('state', (4,)))
ENCODER = {'filters': 4, 'strides': [2, 1], 'features': 6}


def test_copying_a_pixel_actor_brings_its_encoder_into_the_online_and_target_encoders():
  bc = SupervisedAgent.from_dims(SPEC, 2, actor_hidden=(8,), seed=1, encoder=ENCODER)
  rl = RlpdAgent.from_dims(SPEC, 2, num_critics=2, critic_hidden=(8,), actor_hidden=(8,),
                           seed=2, encoder=ENCODER)
  rng = np.random.default_rng(0)
  observation = {'camera': tf.constant(rng.integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)),
                 'state': tf.constant(rng.normal(size=(3, 4)).astype(np.float32))}
  time_step = ts.restart(observation, batch_size=3)
  expected = bc.policy.action(time_step).action.numpy()
  assert np.abs(rl.policy.action(time_step).action.numpy() - expected).max() > 1e-3
  warm_start.copy_actor(bc, rl)
  np.testing.assert_allclose(rl.policy.action(time_step).action.numpy(), expected, atol=1e-6)
  for source, online, target in zip(bc.encoder.variables, rl.encoder.variables,
                                    rl.target_encoder.variables):
    np.testing.assert_array_equal(online.numpy(), source.numpy())
    np.testing.assert_array_equal(target.numpy(), source.numpy())


def test_an_actor_is_not_copied_across_flat_and_pixel_agents_or_encoder_layouts():
  pixel = SupervisedAgent.from_dims(SPEC, 2, actor_hidden=(8,), seed=1, encoder=ENCODER)
  flat = SupervisedAgent.from_dims(4, 2, actor_hidden=(8,), seed=1)
  with pytest.raises(ValueError, match='one agent encodes dict observations, the other not'):
    warm_start.copy_actor(flat, pixel)
  wider = SupervisedAgent.from_dims(SPEC, 2, actor_hidden=(8,), seed=1,
                                    encoder=dict(ENCODER, filters=8))
  with pytest.raises(ValueError, match='the two encoders differ in layout'):
    warm_start.copy_actor(pixel, wider)
