import os

import numpy as np
import pytest

from benchmarks import critic_ranking
from sim import tasks


def test_spearman_and_agreement_by_hand():
  # Ranks of x: [0, 1, 2, 3]; of y: [0, 2, 1, 3]: d = [0, 1, 1, 0], rho = 1 - 6 * 2 / (4 * 15).
  assert critic_ranking.spearman([1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0]) == (
      pytest.approx(0.8))
  assert critic_ranking.spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
  # |d_ref| = [.1, 2, 3, .2, 1]: median 1, clear pairs are the 2 (learner agrees) and the -3
  # (learner disagrees); the small ones do not count whatever the learner says.
  d_ref = np.array([0.1, 2.0, -3.0, -0.2, 1.0])
  d_learned = np.array([-5.0, 0.01, 0.5, 9.0, -1.0])
  assert critic_ranking.agreement(d_learned, d_ref) == pytest.approx(0.5)


def test_load_learner_restores_the_runs_critics_and_actor(tmp_path):
  import tensorflow as tf
  from trainer import learners
  task = tasks.get_task('pen')
  settings, _ = learners.split_settings(
      learners.load_settings('rlif', overrides={'bc_weight': 0.1}))
  trained = learners.LEARNERS['rlif'].make_agent(task.observation_dim, task.action_dim, seed=3,
                                                 **settings)
  directory = os.path.join(tmp_path, 'learner', 'checkpoints')
  tf.train.CheckpointManager(tf.train.Checkpoint(agent=trained), directory, 2).save(7)
  agent, bc_weight, path = critic_ranking.load_learner(str(tmp_path), 'rlif_value+bc0.1', task)
  assert bc_weight == 0.1 and path.endswith('ckpt-7')
  observations = np.random.default_rng(0).standard_normal((5, 45))
  actions = np.random.default_rng(1).uniform(-1, 1, (5, 24))
  np.testing.assert_allclose(critic_ranking.learner_q(agent, observations, actions),
                             critic_ranking.learner_q(trained, observations, actions), rtol=1e-6)
  np.testing.assert_allclose(critic_ranking.deployed_actions(agent, observations),
                             critic_ranking.deployed_actions(trained, observations), rtol=1e-6)
  # A fresh agent with another seed is not what the checkpoint holds.
  other = learners.LEARNERS['rlif'].make_agent(task.observation_dim, task.action_dim, seed=4,
                                               **settings)
  assert not np.allclose(critic_ranking.learner_q(other, observations, actions),
                         critic_ranking.learner_q(trained, observations, actions))
  with pytest.raises(FileNotFoundError, match='no learner checkpoint'):
    critic_ranking.load_learner(str(tmp_path / 'none'), 'rlif_value', task)
