"""How precise the operator's actions are, read from its demonstrations, and what weight its
corrections get in the behaviour term when the settings ask for `operator_weight = "auto"`.

Pure numpy. An operator whose intended action changes smoothly from step to step and whose
executed action carries independent noise e_t logs a_t - a_t-1 = (smooth change) + (e_t -
e_t-1), whose spread is sqrt(2) sigma. `roughness_noise` is the median over action dimensions
of 1.4826 x the median absolute deviation of the first differences inside each episode,
/ sqrt(2): robust to the intended action's occasional fast moves. Clipping to [-1, 1] shrinks
it where the noise is large. On the benchmark's simulated operators it reads the calibrated noise
within 0.07 on hammer and relocate and 0.40 / 0.48 for pen's 0.56 / 0.75
(benchmarks/results/operator_noise).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MAD_TO_STD = 1.4826  # a Gaussian's standard deviation over its median absolute deviation

# `weight_for`: an operator that reads at most PRECISE_NOISE gets PRECISE_WEIGHT, any other 1.
# Measured (benchmarks/RLIF_LEARNING.md, "Relocate ~10%" and after; 3 seeds, same starts):
# weighting the corrections 10x lifted relocate ~10% (noise read 0.21) from 59 to 78, and cost
# pen ~40% (0.40) 8 points and hammer ~10% (0.43) on seed 0: a correction is worth more than a
# demonstration where it is precise, and a few noisy ones weighed up fit the noise.
PRECISE_NOISE = 0.3
PRECISE_WEIGHT = 10.0


def roughness_noise(actions: np.ndarray, episode_sizes: Sequence[int]) -> float:
  """The per-step noise of `actions` ([N, A], episodes back to back, sizes `episode_sizes`) from
  their first differences inside each episode. Raises ValueError with fewer than 2 differences
  in all."""
  actions = np.asarray(actions, np.float64)
  sizes = np.asarray(episode_sizes, int)
  if sizes.sum() != actions.shape[0]:
    raise ValueError(f'episode sizes sum to {sizes.sum()}, but there are {actions.shape[0]} '
                     'actions')
  ends = np.cumsum(sizes)
  diffs = [np.diff(actions[end - size:end], axis=0) for size, end in zip(sizes, ends) if size > 1]
  diffs = np.concatenate(diffs) if diffs else np.zeros((0, actions.shape[-1]))
  if diffs.shape[0] < 2:
    raise ValueError(f'reading the operator\'s noise needs at least 2 step-to-step differences '
                     f'inside episodes; these {len(sizes)} episodes have {diffs.shape[0]}')
  mad = np.median(np.abs(diffs - np.median(diffs, axis=0)), axis=0)
  return float(np.median(mad) * MAD_TO_STD / np.sqrt(2))


def weight_for(noise: float) -> float:
  """The behaviour-term weight of the operator's own steps for an operator whose actions read
  `noise` (`roughness_noise`)."""
  return PRECISE_WEIGHT if noise <= PRECISE_NOISE else 1.0
