"""Writes dummy_data/ for the builder test: pen round 0 (2 demonstrations, npz) and round 1
(2 episodes with takeovers spread over a .jsonl and a .jsonl.gz stream, one broken line)."""

import gzip
import json
import os

import numpy as np

from pipeline import raw_writer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dummy_data', 'pen')


def main():
  rng = np.random.default_rng(0)
  os.makedirs(os.path.join(HERE, 'round_0'), exist_ok=True)
  os.makedirs(os.path.join(HERE, 'round_1'), exist_ok=True)

  def episode(T=5):
    return (np.round(rng.normal(size=(T + 1, 45)), 2), np.round(rng.uniform(-1, 1, (T, 24)), 2))

  for i in range(2):
    obs, act = episode()
    with open(os.path.join(HERE, 'round_0', f'demo_{i}.npz'), 'wb') as f:
      f.write(raw_writer.npz_bytes(obs, act, {'episode_id': f'demo_{i}'}))
  records = []
  for i in range(2):
    obs, act = episode()
    records += raw_writer.step_records(obs, act, {'episode_id': f'rollout_{i}'},
                                       interventions=[False, True, True, False, False])
  lines = [json.dumps(r) for r in records]
  with open(os.path.join(HERE, 'round_1', 'stream_a.jsonl'), 'w') as f:
    f.write('\n'.join(lines[::2]) + '\n{"broken\n')
  with open(os.path.join(HERE, 'round_1', 'stream_b.jsonl.gz'), 'wb') as f:
    f.write(gzip.compress(('\n'.join(lines[1::2]) + '\n').encode(), mtime=0))


if __name__ == '__main__':
  main()
