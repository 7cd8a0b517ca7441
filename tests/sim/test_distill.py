"""The planner's DAgger distillation: the fit, the schedule, and who acts and who labels."""

import numpy as np
import pytest

from sim import distill
from sim import experts as experts_lib
from sim import planner as planner_lib
from sim import tasks as tasks_lib


def test_beta_starts_with_the_planner_alone_and_halves():
  config = distill.DistillConfig(beta=0.5)
  assert [config.beta_at(k) for k in range(4)] == [1.0, 0.5, 0.25, 0.125]


def test_fit_student_learns_a_smooth_map_in_the_expert_file_format():
  rng = np.random.default_rng(0)
  states = rng.normal(3.0, 2.0, (2000, 6))  # off-centre and scaled: the fit normalises inputs
  weights = rng.normal(0, 0.5, (6, 3))
  labels = np.tanh(((states - 3.0) / 2.0) @ weights)
  config = distill.DistillConfig(hidden=32, train_steps=1500, learning_rate=3e-3)
  arrays = distill.fit_student(states, labels, config, seed=0)
  student = experts_lib.MlpExpert.from_arrays(arrays, 'student')
  held_out = rng.normal(3.0, 2.0, (500, 6))
  error = np.mean((student.action(held_out) - np.tanh(((held_out - 3.0) / 2.0) @ weights)) ** 2)
  assert error < 0.01 * np.var(labels) * labels.shape[1] + 1e-3
  assert float(arrays['train_mse']) < 0.01
  np.testing.assert_allclose(arrays['in_shift'], states.mean(0))


def _student_arrays(task):
  """A small random student for `task` in the expert file format."""
  t = tasks_lib.get_task(task)
  rng = np.random.default_rng(1)
  h = 8
  return {'in_shift': np.zeros(t.observation_dim), 'in_scale': np.ones(t.observation_dim),
          'w0': rng.normal(0, 0.1, (t.observation_dim, h)), 'b0': np.zeros(h),
          'w1': rng.normal(0, 0.1, (h, h)), 'b1': np.zeros(h),
          'w2': rng.normal(0, 0.1, (h, t.action_dim)), 'b2': np.zeros(t.action_dim),
          'out_shift': np.zeros(t.action_dim), 'out_scale': np.ones(t.action_dim),
          'log_std': np.zeros(t.action_dim)}


@pytest.mark.parametrize('workers', [1, 2])
def test_student_acts_and_the_planner_labels_every_state(workers):
  arrays = _student_arrays('pen')
  student = experts_lib.MlpExpert.from_arrays(arrays)
  seeds = [11, 12]
  episodes = distill.run_parallel('pen', seeds, arrays, beta=0.0, seed=0,
                                  planner_iterations=1,
                                  workers=workers, episode_length=6)
  assert len(episodes) == 2
  for e in episodes:
    assert e['states'].shape == (6, 45) and e['labels'].shape == (6, 24)
    assert e['expert_share'] == 0.0
    # The student's actions were executed ...
    np.testing.assert_allclose(e['actions'], np.clip(student.action(e['states']), -1, 1),
                               atol=1e-5)
    # ... and the labels are the planner's, which are not the student's.
    assert np.abs(e['labels'] - e['actions']).mean() > 0.05
  # The planner's first label is what a fresh planner plans from the same reset state
  # (its sampling stream is seeded per episode by the collector).
  env = tasks_lib.make_env('pen', seeds[0], 6)
  try:
    obs, _ = env.reset(seed=seeds[0])
    fresh = planner_lib.PenPlanner(env=env)
    first = np.clip(fresh.act(obs, np.random.default_rng(seeds[0])), -1, 1)
  finally:
    env.close()
  np.testing.assert_allclose(episodes[0]['labels'][0], first, atol=1e-5)


def test_planner_demonstrations_are_their_own_labels():
  (e,) = distill.run_parallel('pen', [5], None, beta=1.0, seed=0, planner_iterations=1,
                              workers=1,
                              episode_length=4)
  assert e['expert_share'] == 1.0
  np.testing.assert_array_equal(e['labels'], e['actions'])


def test_labelling_stops_when_the_pen_drops():
  env = distill.StopAtDrop(tasks_lib.make_env('pen', 0))
  rng = np.random.default_rng(0)
  try:
    obs, _ = env.reset(seed=0)
    heights = [obs[distill.PEN_HEIGHT]]
    for step in range(200):
      obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 24))
      heights.append(obs[distill.PEN_HEIGHT])
      if terminated or truncated:
        break
  finally:
    env.close()
  # Flailing drops the pen well before the 200-step limit; the episode ends at that step,
  # which the environment's own drop penalty (-5 below 0.075 m) marks too.
  assert terminated and step < 150
  assert heights[-1] < planner_lib.DROP_HEIGHT and min(heights[:-1]) >= planner_lib.DROP_HEIGHT
  assert reward < -3
  np.testing.assert_array_equal(distill.dropped(np.array([obs, np.r_[obs[:26], 0.2, obs[27:]]])),
                                [True, False])


def test_labels_are_averaged_over_a_centred_window_per_episode():
  labels = np.array([[0.0, 1.0], [3.0, 1.0], [6.0, 1.0], [3.0, -2.0]])
  # Window 3, ends repeated: (0+0+3)/3, (0+3+6)/3, (3+6+3)/3, (6+3+3)/3.
  np.testing.assert_allclose(distill.smooth(labels, 3)[:, 0], [1.0, 3.0, 4.0, 4.0])
  np.testing.assert_allclose(distill.smooth(labels, 3)[:, 1], [1.0, 1.0, 0.0, -1.0])
  np.testing.assert_array_equal(distill.smooth(labels, 1), labels)
  with pytest.raises(ValueError, match='odd'):
    distill.smooth(labels, 4)


def test_takeovers_do_not_depend_on_the_number_of_workers():
  arrays = _student_arrays('pen')
  runs = [distill.run_parallel('pen', [21, 22, 23], arrays, beta=0.5, seed=3,
                               planner_iterations=1, workers=workers, episode_length=8)
          for workers in (1, 2)]
  shares = [[e['expert_share'] for e in run] for run in runs]
  assert shares[0] == shares[1]
  assert 0 < np.mean(shares[0]) < 1  # both drivers acted
  # The same episodes, up to float rounding: the student acts on batches of 3 or of 1-2.
  for one, two in zip(*runs):
    np.testing.assert_allclose(one['actions'], two['actions'], atol=1e-3)
