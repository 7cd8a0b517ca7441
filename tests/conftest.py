"""Fixtures: real raw logs on disk, and a run folder held by another process."""

import os

import numpy as np
import pytest

from pipeline import raw_writer
from tests import lock_holder

OBS_DIM, ACT_DIM = 5, 3


@pytest.fixture
def held(tmp_path):
  """A run folder held by another process (tests/lock_holder.py); yields (folder, process)."""
  run_dir = str(tmp_path / 'run')
  with lock_holder.start(run_dir) as proc:
    yield run_dir, proc


def make_episode(rng, T, takeover=(5, 9)):
  obs = rng.normal(size=(T + 1, OBS_DIM)).astype(np.float32)
  act = rng.uniform(-1, 1, size=(T, ACT_DIM)).astype(np.float32)
  flags = np.zeros(T, bool)
  if takeover:
    flags[takeover[0]:takeover[1]] = True
  return obs, act, flags


def write_round(directory, seed, num_npz=4, num_streamed=3, T=20, demos=False):
  """Writes `num_npz` npz episodes and `num_streamed` episodes spread (shuffled) over two step
  streams (one gzipped). Each episode has one takeover of 4 steps unless `demos`."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(num_npz):
    obs, act, flags = make_episode(rng, T, None if demos else (5, 9))
    raw_writer.write_npz_episode(
        os.path.join(directory, f'ep{seed}_{i}.npz'), obs, act, {'episode_id': f'n{seed}_{i}'},
        interventions=None if demos else flags, terminated=i % 2 == 0)
  records = []
  for i in range(num_streamed):
    obs, act, flags = make_episode(rng, T)
    records += raw_writer.step_records(obs, act, {'episode_id': f's{seed}_{i}'},
                                       interventions=flags, policy_actions=act)
  if records:
    order = rng.permutation(len(records))
    records = [records[i] for i in order]
    half = len(records) // 2
    raw_writer.write_step_stream(os.path.join(directory, f'fleet{seed}_a.jsonl'), records[:half])
    raw_writer.write_step_stream(os.path.join(directory, f'fleet{seed}_b.jsonl.gz'),
                                 records[half:])
  return directory


@pytest.fixture
def raw_logs(tmp_path):
  return lambda name, seed, **kw: write_round(str(tmp_path / name), seed, **kw)
