"""Reading the operator's noise from its demonstrations, and the weight it gives
(trainer/operator_noise.py)."""

import numpy as np
import pytest

from trainer import operator_noise


def smooth_actions(rng, episodes, steps, dims):
  """Back-to-back episodes of slow sines of amplitude 0.5, [episodes * steps, dims]."""
  t = np.linspace(0, 2 * np.pi, steps)[:, None]
  return np.concatenate([0.5 * np.sin(t * rng.uniform(0.5, 2.0, dims) + rng.uniform(0, np.pi, dims))
                         for _ in range(episodes)])


@pytest.mark.parametrize('sigma', [0.05, 0.2, 0.4])
def test_reads_the_noise_of_a_smooth_operator(sigma):
  rng = np.random.default_rng(0)
  actions = smooth_actions(rng, 20, 200, 24) + rng.normal(0, sigma, (4000, 24))
  assert operator_noise.roughness_noise(actions, [200] * 20) == pytest.approx(sigma, rel=0.05)


def test_a_noise_free_smooth_operator_reads_near_zero():
  actions = smooth_actions(np.random.default_rng(1), 5, 200, 8)
  # The sines' own step-to-step change is at most 0.5 * 2 * 2pi / 199 ~ 0.03.
  assert operator_noise.roughness_noise(actions, [200] * 5) < 0.03


def test_differences_never_cross_an_episode_boundary():
  """Constant actions per episode, a jump of 2 between episodes: no step-to-step change inside
  any episode, so the noise reads 0 whatever the jumps."""
  actions = np.repeat(np.array([[-1.0], [1.0], [-1.0]]), [4, 3, 5], axis=0)
  assert operator_noise.roughness_noise(actions, [4, 3, 5]) == 0.0


def test_clipping_shrinks_a_large_noise():
  rng = np.random.default_rng(2)
  actions = np.clip(smooth_actions(rng, 20, 200, 24) + rng.normal(0, 0.75, (4000, 24)), -1, 1)
  assert 0.4 < operator_noise.roughness_noise(actions, [200] * 20) < 0.65


def test_refuses_too_few_differences_and_sizes_that_do_not_add_up():
  with pytest.raises(ValueError, match='at least 2 step-to-step differences'):
    operator_noise.roughness_noise(np.zeros((4, 3)), [1, 1, 2])
  with pytest.raises(ValueError, match='episode sizes sum to 5, but there are 4 actions'):
    operator_noise.roughness_noise(np.zeros((4, 3)), [2, 3])


def test_weight_is_the_precise_weight_up_to_the_threshold_and_1_above():
  assert operator_noise.weight_for(0.0) == operator_noise.PRECISE_WEIGHT == 10.0
  assert operator_noise.weight_for(0.3) == 10.0  # PRECISE_NOISE itself counts as precise
  assert operator_noise.weight_for(0.31) == 1.0
  assert operator_noise.weight_for(0.75) == 1.0
