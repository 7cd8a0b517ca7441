"""Writes the raw logs that ship for the quickstart (`sim/quickstart_data/pen/round_<N>/`).

  python -m sim.quickstart_sample [--num_demos 20 --rounds 2 --episodes_per_round 5 --seed 0]

The project's own pen expert (`sim.project_expert`, nothing from outside the repository) collects
round 0's demonstrations; in each later round a behaviour-cloning policy trained on round 0 acts
and the expert takes over at random on ~30% of the steps (`sim.prepare`'s simulated rounds). The
raw npz files are copied into `sim.prepare.SAMPLE_DIR`, where `python -m trainer.main` finds them
when TFDS's manual directory is empty. About 40 s on one core.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile

from sim import prepare


def copy_raw_rounds(raw_root: str, out_dir: str) -> dict[int, int]:
  """`raw_root`/round_<N>/*.npz -> `out_dir`/round_<N>/; returns {N: files copied}."""
  copied = {}
  for round_dir in sorted(glob.glob(os.path.join(raw_root, 'round_*'))):
    files = sorted(glob.glob(os.path.join(round_dir, '*.npz')))
    if not files:
      continue
    target = os.path.join(out_dir, os.path.basename(round_dir))
    os.makedirs(target, exist_ok=True)
    for path in files:
      shutil.copy2(path, target)
    copied[int(os.path.basename(round_dir).split('_')[1])] = len(files)
  return copied


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--num_demos', type=int, default=20)
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--episodes_per_round', type=int, default=5)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--work_dir', default=None, help='keep the collection here (default: temp)')
  args = parser.parse_args()
  work = args.work_dir or tempfile.mkdtemp(prefix='rlif_sample_')
  dataset = 'rlif_adroit'
  prepare.prepare(work, dataset, 'pen', None, num_demos=args.num_demos,
                  intervention_rounds=args.rounds, episodes_per_round=args.episodes_per_round,
                  seed=args.seed, simulate=True)
  out = os.path.join(prepare.SAMPLE_DIR, 'pen')
  if os.path.exists(out):
    shutil.rmtree(out)
  copied = copy_raw_rounds(os.path.join(work, f'{dataset}_raw'), out)
  print(f'wrote {out}: ' + ', '.join(f'round {r}: {n} episodes' for r, n in sorted(copied.items())))


if __name__ == '__main__':
  main()
