import json
import math

import numpy as np
import pytest

from sim import experts
from tests.sim import shared_files


def tiny_arrays():
  """D=2, H=2, A=1 with numbers chosen so the forward pass can be done by hand."""
  return {
      'in_shift': np.array([1.0, 0.0]), 'in_scale': np.array([2.0, 1.0]),
      'w0': np.array([[1.0, 0.0], [0.0, 2.0]]), 'b0': np.array([0.0, -1.0]),
      'w1': np.array([[1.0, 1.0], [0.0, 1.0]]), 'b1': np.array([0.0, 0.0]),
      'w2': np.array([[2.0], [1.0]]), 'b2': np.array([0.5]),
      'out_shift': np.array([-1.0]), 'out_scale': np.array([0.5]),
      'log_std': np.array([math.log(0.5)]),
  }


@pytest.fixture
def tiny_file(tmp_path):
  path = str(tmp_path / 'tiny.npz')
  np.savez(path, **tiny_arrays())
  return path


def test_forward_pass_by_hand(tiny_file):
  expert = experts.MlpExpert.load(tiny_file)
  assert (expert.observation_dim, expert.action_dim) == (2, 1)
  # obs [3, .5]: x = [1, .5]; layer 1: tanh([1, 0]); layer 2: both units tanh(tanh(1)).
  h = math.tanh(math.tanh(1.0))
  first = 0.5 * (2 * h + h + 0.5) - 1.0
  # obs [1, 0]: x = [0, 0]; layer 1: [0, tanh(-1)]; layer 2: [0, tanh(tanh(-1))].
  second = 0.5 * (math.tanh(math.tanh(-1.0)) + 0.5) - 1.0
  assert first == pytest.approx(0.2130224, abs=1e-6)
  np.testing.assert_allclose(expert.action([3.0, 0.5]), [first], rtol=1e-7)
  np.testing.assert_allclose(expert.action([[3.0, 0.5], [1.0, 0.0]]), [[first], [second]],
                             rtol=1e-7)
  z = np.random.default_rng(7).standard_normal(1)
  np.testing.assert_allclose(expert.sample([3.0, 0.5], np.random.default_rng(7)),
                             [first + 0.5 * z[0]], rtol=1e-7)


@pytest.mark.parametrize('change, message', [
    (lambda a: a.pop('log_std'), 'missing arrays'),
    (lambda a: a.update(w1=np.zeros((2, 3))), 'w1 has shape'),
    (lambda a: a.update(b2=np.zeros(2)), 'b2 has shape'),
    (lambda a: a.update(in_scale=np.zeros((2, 1))), 'rank 1'),
    (lambda a: a.update(b0=np.array([np.nan, 0.0])), 'NaN'),
])
def test_wrong_files_are_refused_with_the_reason(tmp_path, change, message):
  arrays = tiny_arrays()
  change(arrays)
  path = str(tmp_path / 'bad.npz')
  np.savez(path, **arrays)
  with pytest.raises(experts.ExpertFileError, match=message):
    experts.MlpExpert.load(path)


def test_pickles_and_non_npz_files_are_refused(tmp_path):
  arrays = tiny_arrays()
  arrays['w0'] = np.array([{'a': 1}], dtype=object)
  np.savez(str(tmp_path / 'pickled.npz'), **arrays)
  with pytest.raises(experts.ExpertFileError, match='not a readable'):
    experts.MlpExpert.load(str(tmp_path / 'pickled.npz'))
  (tmp_path / 'text.npz').write_text('hello')
  with pytest.raises(experts.ExpertFileError, match='not a readable'):
    experts.MlpExpert.load(str(tmp_path / 'text.npz'))
  np.save(str(tmp_path / 'one.npy'), np.zeros(3))
  with pytest.raises(experts.ExpertFileError, match='single .npy'):
    experts.MlpExpert.load(str(tmp_path / 'one.npy'))


def test_pen_expert_shapes_and_determinism():
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')
  obs = np.random.default_rng(0).normal(size=(5, 45))
  actions = expert.action(obs)
  assert actions.shape == (5, 24) and expert.action(obs[0]).shape == (24,)
  np.testing.assert_allclose(expert.action(obs[0]), actions[0], rtol=1e-12)
  np.testing.assert_array_equal(expert.action(obs), actions)
  np.testing.assert_array_equal(expert.act(obs[0], None), expert.action(obs[0]))
  a = expert.sample(obs, np.random.default_rng(3))
  b = expert.sample(obs, np.random.default_rng(3))
  c = expert.sample(obs, np.random.default_rng(4))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  # Sampling noise has the stored standard deviation.
  many = expert.sample(np.repeat(obs[:1], 4000, axis=0), np.random.default_rng(5))
  np.testing.assert_allclose(many.std(axis=0) / expert.std, 1.0, atol=0.06)
  with pytest.raises(experts.ExpertFileError, match='do not match task door'):
    experts.MlpExpert.load(shared_files.expert_path('pen'), 'door')


def test_noisy_expert_is_seeded_and_zero_noise_is_the_base(tiny_file):
  base = experts.MlpExpert.load(tiny_file)
  obs = np.array([3.0, 0.5])
  assert experts.NoisyExpert(base, 0.0).act(obs, np.random.default_rng(0)) == base.action(obs)
  noisy = experts.NoisyExpert(base, 0.3)
  z = np.random.default_rng(1).standard_normal(1)
  np.testing.assert_allclose(noisy.act(obs, np.random.default_rng(1)), base.action(obs) + 0.3 * z)
  json.dumps(noisy.describe())


def test_distorted_expert_sends_a_fixed_function_of_the_action(tiny_file):
  base = experts.MlpExpert.load(tiny_file)
  observations = np.array([[3.0, 0.5], [1.0, -2.0], [0.0, 0.0]])
  assert np.array_equal(experts.DistortedExpert(base, 0.0).act_all(observations, [None] * 3),
                        base.action(observations))
  distorted = experts.DistortedExpert(base, 0.4, seed=7)
  (m,), c = experts.distortion(7, 1)  # A = 1: M is [[m]], c is [c0]
  a = base.action(observations)[:, 0]
  expected = a + 0.4 * np.tanh(a * m[0] + c[0])
  np.testing.assert_allclose(distorted.act_all(observations, [None] * 3)[:, 0], expected)
  # The error is the same at every visit of a state, whatever the random draws: nothing for an
  # average over demonstrations to cancel (NoisyExpert's mean over draws is the base action).
  draws = [distorted.act(observations[0], np.random.default_rng(i)) for i in range(5)]
  assert all(np.array_equal(d, draws[0]) for d in draws)
  assert abs(draws[0][0] - a[0]) > 0.01
  noisy = experts.NoisyExpert(base, 0.4)
  mean = np.mean([noisy.act(observations[0], np.random.default_rng(i)) for i in range(4000)])
  assert abs(mean - a[0]) < 0.03
  mixing, offset = experts.distortion(7, 24)
  assert mixing.shape == (24, 24) and offset.shape == (24,)
  assert not np.array_equal(experts.distortion(7, 3)[1], experts.distortion(8, 3)[1])
  assert distorted.describe() == {'kind': 'distorted', 'name': 'tiny.npz', 'scale': 0.4,
                                  'seed': 7}
  assert isinstance(experts.degrade(base, 'distortion', 0.4), experts.DistortedExpert)
  with pytest.raises(ValueError, match="unknown degradation 'bias'"):
    experts.degrade(base, 'bias', 0.4)


def test_executed_actions_are_the_experts_actions_clipped_to_the_box(tiny_file):
  base = experts.MlpExpert.load(tiny_file)
  # obs [1, -2]: x = [0, -2]; layer 1: [0, tanh(-5)]; layer 2: [0, tanh(tanh(-5))], so the raw
  # action 0.5 * (tanh(tanh(-5)) + 0.5) - 1 = -1.131 leaves the box; obs [3, .5] gives 0.213.
  raw = 0.5 * (math.tanh(math.tanh(-5.0)) + 0.5) - 1.0
  assert raw == pytest.approx(-1.1307780, abs=1e-6)
  observations = np.array([[3.0, 0.5], [1.0, -2.0]])
  np.testing.assert_allclose(base.action(observations)[:, 0], [0.2130224, raw], atol=1e-6)
  np.testing.assert_allclose(experts.executed_actions(base, observations)[:, 0],
                             [0.2130224, -1.0], atol=1e-6)
  # A degraded expert (whose act_all takes per-row draws) goes through the same clip.
  distorted = experts.DistortedExpert(base, 0.4, seed=7)
  sent = distorted.act_all(observations, [None] * 2)
  np.testing.assert_array_equal(experts.executed_actions(distorted, observations),
                                np.clip(sent, -1, 1))
  assert sent[1, 0] < -1 and -1 < sent[0, 0] < 1


def test_clipped_gaussian_mean_by_hand_and_by_sampling():
  # mean 1, sigma 1: -Phi(-2) + (1 - Phi(0)) + 1 * (Phi(0) - Phi(-2)) - (phi(0) - phi(-2))
  # = -0.022750 + 0.5 + 0.477250 - (0.398942 - 0.053991) = 0.609549.
  assert experts.clipped_gaussian_mean(1.0, 1.0) == pytest.approx(0.609549, abs=1e-6)
  assert experts.clipped_gaussian_mean(0.0, 0.7) == pytest.approx(0.0, abs=1e-12)  # symmetric
  np.testing.assert_array_equal(experts.clipped_gaussian_mean([2.0, -0.3], 0.0), [1.0, -0.3])
  mean = np.array([-4.4, -0.9, 0.2, 0.95, 3.0])
  draws = np.random.default_rng(0).standard_normal((400_000, 5))
  for sigma in (0.3, 0.75):
    sampled = np.clip(mean + sigma * draws, -1, 1).mean(axis=0)
    np.testing.assert_allclose(experts.clipped_gaussian_mean(mean, sigma), sampled, atol=3e-3)
  # Clipping pulls the mean inward: never further out than the clipped base action.
  averaged = experts.clipped_gaussian_mean(mean, 0.75)
  assert np.all(np.abs(averaged) <= np.abs(np.clip(mean, -1, 1)))
  assert averaged[0] == pytest.approx(-1.0, abs=1e-6)  # far outside: the noise never reaches in


def test_noise_averaged_expert_is_the_mean_of_the_logged_noisy_actions(tiny_file):
  base = experts.MlpExpert.load(tiny_file)
  observations = np.array([[3.0, 0.5], [1.0, -2.0]])  # raw actions 0.213 and -1.131 (above)
  averaged = experts.NoiseAveragedExpert(base, 0.5)
  noisy = experts.NoisyExpert(base, 0.5)
  rngs = [np.random.default_rng(i) for i in range(20_000)]
  logged = np.stack([experts.executed_actions(noisy, observations[None, k].repeat(len(rngs), 0),
                                              rngs) for k in range(2)])
  np.testing.assert_allclose(averaged.action(observations)[:, 0], logged.mean(axis=1)[:, 0],
                             atol=0.01)
  assert averaged.action(observations)[1, 0] > -1.0 + 0.05  # inward of the clipped -1
  assert experts.NoiseAveragedExpert(base, 0.0).act(observations[1]) == pytest.approx(-1.0)


def test_calibrate_bisects_to_the_level_nearest_the_target(monkeypatch):
  calls = []

  def fake_success_rate(task, expert, num_episodes, seed, episode_length):
    calls.append(expert.noise_scale)
    return max(0.0, 0.8 - expert.noise_scale)

  monkeypatch.setattr(experts, 'success_rate', fake_success_rate)
  found = experts.calibrate('pen', None, 0.4, iterations=4)
  # Levels: 0 (.8), 1 (0), .5 (.3), .25 (.55), .375 (.425), .4375 (.3625).
  assert calls == [0.0, 1.0, 0.5, 0.25, 0.375, 0.4375]
  assert found.scale == 0.375 and found.success_rate == pytest.approx(0.425)
  # A target above the undegraded expert cannot be reached: the base expert is the answer.
  calls.clear()
  found = experts.calibrate('pen', None, 0.9)
  assert calls == [0.0] and found.scale == 0.0


def test_calibrate_smoke_on_pen():
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')
  found = experts.calibrate('pen', expert, 0.5, num_episodes=1, iterations=1, episode_length=20)
  assert 0.0 <= found.scale <= 1.0 and 0.0 <= found.success_rate <= 1.0
  assert found.measured[found.scale] == found.success_rate


def test_noisy_expert_binds_a_planner_base_to_the_collector_env():
  from sim import collector
  from sim import planner
  from sim import tasks
  env = tasks.make_env('pen', seed=0, episode_length=3)
  noisy = experts.NoisyExpert(planner.PenPlanner(), 0.2)
  bound = collector.bound(noisy, env)
  assert isinstance(bound, experts.NoisyExpert) and bound.noise_scale == 0.2
  assert bound.base.env is env and noisy.base.env is None
  assert bound.describe() == {'kind': 'noisy', 'name': 'PenPlanner', 'noise_scale': 0.2}
  episode = collector.run_episode(env, 'pen', bound, seed=5, episode_length=3)
  assert episode.actions.shape == (3, 24) and np.all(np.abs(episode.actions) <= 1)
  distorted = experts.DistortedExpert(planner.PenPlanner(), 0.3, seed=2)
  bound = collector.bound(distorted, env)
  assert isinstance(bound, experts.DistortedExpert) and (bound.scale, bound.seed) == (0.3, 2)
  assert bound.base.env is env and distorted.base.env is None
  mlp = experts.DistortedExpert(experts.MlpExpert.from_arrays(tiny_arrays()), 0.3)
  assert collector.bound(mlp, env) is mlp  # nothing to bind: episodes share one expert
  env.close()


def test_calibrated_levels_are_looked_up_per_task_and_order_the_noise():
  for task, levels in experts.CALIBRATED_NOISE.items():
    assert set(levels) == {'90', '40', '10'}, task
    assert 0 <= levels['90'] < levels['40'] < levels['10'], task
    assert experts.calibrated_noise(task, '40') == levels['40']
  with pytest.raises(KeyError, match=r"no calibrated ~50% noise expert for 'door'"):
    experts.calibrated_noise('door', '50')
  with pytest.raises(KeyError, match='unknown task'):
    experts.calibrated_noise('walker', '40')


def test_calibrated_distortion_levels_order_the_scale():
  assert set(experts.CALIBRATED_DISTORTION) == set(experts.CALIBRATED_NOISE)
  for task, levels in experts.CALIBRATED_DISTORTION.items():
    assert set(levels) == {'90', '40', '10'}, task
    assert 0 <= levels['90'] < levels['40'] < levels['10'], task
    assert experts.calibrated_scale(task, '10', 'distortion') == levels['10']
  with pytest.raises(KeyError, match="unknown degradation 'bias'"):
    experts.calibrated_scale('pen', '40', 'bias')


def test_calibrated_pen_distortion_degrades_the_expert_as_measured():
  """sim/EXPERTS.md: the ~10% distorted pen expert fails where the base expert mostly succeeds."""
  pen = experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')
  scale = experts.calibrated_scale('pen', '10', 'distortion')
  base_rate = experts.success_rate('pen', pen, num_episodes=10, seed=1000)
  distorted_rate = experts.success_rate('pen', experts.DistortedExpert(pen, scale),
                                        num_episodes=10, seed=1000)
  assert base_rate >= 0.6 and distorted_rate <= 0.4


def test_calibrated_door_levels_degrade_the_expert_as_measured():
  """sim/EXPERTS.md: door's base expert succeeds on every episode, its ~10% level rarely."""
  door = experts.MlpExpert.load(shared_files.expert_path('door'), 'door')
  rate = {level: experts.success_rate(
      'door', experts.NoisyExpert(door, experts.calibrated_noise('door', level) if level else 0.0),
      num_episodes=10, seed=1000) for level in ('', '40', '10')}
  assert rate[''] == 1.0
  assert rate[''] > rate['40'] >= rate['10']
  assert rate['10'] <= 0.3
