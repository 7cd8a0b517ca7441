import math

import pytest

from benchmarks import pipeline_benchmark as pb


def test_fit_recovers_start_up_and_per_episode_cost():
  fixed, per_episode = pb.fit_fixed_and_per_episode([1, 500, 2000], [6.01, 11.0, 26.0])
  assert fixed == pytest.approx(6.0, abs=0.01) and per_episode == pytest.approx(0.01, abs=1e-4)


def test_size_for_speedup_solves_the_crossover_by_hand():
  # bare: 1 s + 17 ms/episode; Beam: 7 s + 10 ms/episode. 1.5x where
  # 1 + 0.017 n = 1.5 (7 + 0.010 n) -> 0.002 n = 9.5 -> n = 4750.
  assert pb.size_for_speedup((1.0, 0.017), (7.0, 0.010), 1.5) == pytest.approx(4750)
  # Per-episode speedup below the target: no size reaches it.
  assert math.isinf(pb.size_for_speedup((1.0, 0.014), (7.0, 0.010), 1.5))
