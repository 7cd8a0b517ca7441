"""The roughness estimate of an operator's per-step noise (benchmarks/operator_noise.py)."""

import numpy as np
import pytest

from benchmarks import operator_noise


def _smooth(steps, dims, rng):
  t = np.linspace(0, 2 * np.pi, steps)[:, None]
  return 0.5 * np.sin(t * rng.uniform(0.5, 2.0, dims) + rng.uniform(0, np.pi, dims))


@pytest.mark.parametrize('sigma', [0.05, 0.2, 0.4])
def test_recovers_the_noise_of_a_smooth_operator(sigma):
  rng = np.random.default_rng(0)
  episodes = [_smooth(200, 24, rng) + rng.normal(0, sigma, (200, 24)) for _ in range(20)]
  assert operator_noise.roughness_noise(episodes) == pytest.approx(sigma, rel=0.05)


def test_a_noise_free_smooth_operator_reads_near_zero():
  rng = np.random.default_rng(1)
  # The smooth signal's own step-to-step change is at most 0.5 * 2 * 2pi / 199 ~ 0.03.
  assert operator_noise.roughness_noise([_smooth(200, 8, rng) for _ in range(5)]) < 0.03


def test_clipping_shrinks_a_large_noise():
  rng = np.random.default_rng(2)
  episodes = [np.clip(_smooth(200, 24, rng) + rng.normal(0, 0.75, (200, 24)), -1, 1)
              for _ in range(20)]
  assert 0.4 < operator_noise.roughness_noise(episodes) < 0.65


def test_refuses_too_few_steps():
  with pytest.raises(ValueError, match='at least 3 steps'):
    operator_noise.roughness_noise([np.zeros((2, 3))])
