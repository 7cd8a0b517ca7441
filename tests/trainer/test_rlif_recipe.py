"""What configs/rlif.toml's temperature settings are for: a warm-started actor keeps its spread.

The closed loop starts RLIF's actor from a behaviour-cloning policy whose spread was fitted to
the data, far narrower than RLPD's target entropy (-|A|/2). With an entropy bonus, even a small
temperature widens that spread at Adam's full step size (Adam divides the constant push by its
own size), and the critics are then asked about actions far from the data. Here both recipes
train the same warm-started actor on the same batches; only the temperature settings differ.
"""

import numpy as np
import tensorflow as tf

from trainer import learners
from trainer import warm_start
from trainer.rlpd_agent import RlpdAgent
from trainer.supervised_agent import SupervisedAgent
from trainer.transition import Transition

OBS_DIM, ACT_DIM, SIZE = 6, 6, 256
SMALL = dict(num_critics=4, critic_hidden=(32, 32), actor_hidden=(32, 32), actor_update_after=0,
             seed=0, use_xla=False)


def _data():
  rng = np.random.default_rng(0)
  observation = rng.normal(size=(SIZE, OBS_DIM)).astype(np.float32)
  weights = rng.normal(size=(OBS_DIM, ACT_DIM)).astype(np.float32)
  action = np.clip(0.9 * np.tanh(observation @ weights) + rng.normal(0, 0.05, (SIZE, ACT_DIM)),
                   -0.99, 0.99).astype(np.float32)
  reward = np.where(rng.uniform(size=SIZE) < 0.05, -1.0, 0.0).astype(np.float32)
  return Transition(observation=tf.constant(observation), action=tf.constant(action),
                    reward=tf.constant(reward), discount=tf.ones(SIZE),
                    next_observation=tf.constant(np.roll(observation, -1, axis=0)),
                    demonstrated=tf.ones(SIZE))


def _entropy_before_and_after(batch, bc, **temperature):
  settings, _ = learners.split_settings(learners.load_settings('rlif'))
  settings.pop('encoder')
  agent = RlpdAgent.from_dims(OBS_DIM, ACT_DIM, **dict(settings, **SMALL, **temperature))
  warm_start.copy_actor(bc, agent)
  entropies = [float(agent.train(batch).extra['entropy']) for _ in range(400)]
  return np.mean(entropies[:5]), np.mean(entropies[-20:])


def test_the_recipe_keeps_the_warm_started_spread_where_an_entropy_bonus_widens_it():
  batch = _data()
  bc = SupervisedAgent.from_dims(OBS_DIM, ACT_DIM, actor_hidden=(32, 32), learning_rate=3e-3,
                                 seed=0)
  for _ in range(600):
    bc.train(batch)
  before, after = _entropy_before_and_after(batch, bc)
  assert before < -ACT_DIM  # the fitted spread is far below RLPD's target entropy
  assert after < before + 0.5
  # The previous recipe: temperature 0.01, learned toward the target entropy.
  bonus_before, bonus_after = _entropy_before_and_after(
      batch, bc, initial_temperature=0.01, temperature_learning_rate=3e-4)
  assert abs(bonus_before - before) < 1.0  # the same actor at the start
  assert bonus_after > bonus_before + 3.0
