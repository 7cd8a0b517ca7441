r"""How precise each benchmark operator's actions are, read from its logged demonstrations alone.

  python benchmarks/operator_noise.py [--grids pen_mae,hammer_mae,relocate_mae] [--seed 0]

Relocate ~10% and pen ~40% disagree on `operator_weight` (benchmarks/RLIF_LEARNING.md,
"Relocate ~10%"): weighting the operator's corrections 10x lifts relocate and costs pen. The
simulated operators differ in how noisy their actions are, so this asks whether that could be
read from the data a team has, without the expert: an operator whose intended action changes
smoothly from step to step and whose executed action carries independent noise e_t has
a_t - a_{t-1} = (smooth change) + (e_t - e_{t-1}), whose spread is sqrt(2) sigma. The estimate is
`trainer.operator_noise.roughness_noise`, the reading `operator_weight = "auto"` uses. Clipping
to [-1, 1] shrinks it where the noise is large (pen). Printed beside the noise each level was
calibrated with (sim/experts.py); reads the round-0 demonstrations of finished runs under
~/rlif_runs/benchmark/<grid>/level<L>/*-s<seed>/raw/round_0/.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def grid_demonstrations(root: str, grid: str, level: str, seed: int) -> list[np.ndarray]:
  """The executed actions of one run's round-0 demonstrations (any finished run of the seed: the
  runs of a seed share them)."""
  for run in sorted(glob.glob(os.path.join(root, grid, f'level{level}', f'*-s{seed}'))):
    files = sorted(glob.glob(os.path.join(run, 'raw', 'round_0', '*.npz')))
    if files:
      return [np.load(f, allow_pickle=True)['actions'] for f in files]
  return []


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--grids', default='pen_mae,hammer_mae,relocate_mae,door_mae')
  parser.add_argument('--levels', default='90,40,10')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--root', default=os.path.expanduser('~/rlif_runs/benchmark'))
  args = parser.parse_args()
  from sim import experts as experts_lib
  from trainer import operator_noise
  lines = ['| grid | level | calibrated noise | estimated from the demonstrations | episodes |',
           '|---|---|---|---|---|']
  for grid in args.grids.split(','):
    task = grid.split('_')[0]
    for level in args.levels.split(','):
      episodes = grid_demonstrations(args.root, grid, level, args.seed)
      if not episodes:
        continue
      sigma = experts_lib.calibrated_scale(task, level, 'noise')
      noise = operator_noise.roughness_noise(np.concatenate(episodes), [len(a) for a in episodes])
      lines.append(f'| {grid} | ~{level}% | {sigma:.3f} | {noise:.3f} | '
                   f'{len(episodes)} |')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
