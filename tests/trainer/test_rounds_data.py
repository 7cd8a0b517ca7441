"""Reading rounds: what the trainer relies on is checked, with errors naming what and where."""

import os

import numpy as np
import pytest

from pipeline import examples
from pipeline import relabel as rl
from pipeline import round_job
from pipeline import rounds
from pipeline.raw_format import RawEpisode
from trainer import rounds_data


def write(raw_logs, tmp_path, round_index, **kw):
  inputs = raw_logs(f'in{round_index}', round_index, **kw)
  return round_job.run_round([os.path.join(inputs, '*')], str(tmp_path / 'data'), 'ds',
                             round_index, runner='plain')


def test_loads_transitions_of_a_round(raw_logs, tmp_path):
  write(raw_logs, tmp_path, 0)
  data = rounds_data.RlifDataset(str(tmp_path / 'data'), 'ds')
  assert (data.observation_dim, data.action_dim, data.rounds()) == (5, 3, [0])
  r0 = data.load_round(0)
  assert r0.episodes == 7
  assert r0.transitions['observation'].shape == (7 * 20, 5)
  assert (r0.transitions['reward'] == -1).sum() == 7  # One takeover per episode.
  assert r0.intervention_rate == pytest.approx(4 / 20)
  assert (r0.transitions['discount'] == 0).sum() == 2  # npz episodes 0 and 2 terminate.


def test_missing_dataset(tmp_path):
  with pytest.raises(rounds_data.DatasetError, match='no dataset .nope. under'):
    rounds_data.RlifDataset(str(tmp_path), 'nope')
  os.makedirs(tmp_path / 'empty' / '1.0.0')
  with pytest.raises(rounds_data.DatasetError, match='no committed dataset version'):
    rounds_data.RlifDataset(str(tmp_path), 'empty')


def test_wrong_schema(tmp_path):
  import tensorflow_datasets as tfds
  layout = rounds.DatasetLayout(str(tmp_path), 'other')
  os.makedirs(layout.version_dir)
  features = tfds.features.FeaturesDict({'steps': tfds.features.Dataset({
      'observation': tfds.features.Tensor(shape=(3,), dtype=np.float32),
      'action': tfds.features.Tensor(shape=(2,), dtype=np.float32)})})
  rounds.write_metadata(layout, features, {})
  with pytest.raises(rounds_data.DatasetError, match=r"steps lack \['reward', 'discount'"):
    rounds_data.RlifDataset(str(tmp_path), 'other')


def test_nan_reward_names_round_and_episode(raw_logs, tmp_path):
  write(raw_logs, tmp_path, 0, num_npz=1, num_streamed=0)
  layout = rounds.DatasetLayout(str(tmp_path / 'data'), 'ds')
  raw = RawEpisode(np.zeros((4, 5), np.float32), np.zeros((3, 3), np.float32), None, None,
                   False, {'episode_id': 'bad-episode'}, 'x')
  episode = rl.relabel(raw)[0]
  episode.steps['reward'][1] = np.nan  # Only a foreign writer could produce this.
  data = examples.serialize(examples.to_example(raw, episode, 1, rl.Takeover.KEEP), (5, 3))
  import tensorflow as tf
  with tf.io.TFRecordWriter(layout.shard_path(1, 0, 1)) as w:
    w.write(data)
  splits = rounds.committed_rounds(layout)
  import tensorflow_datasets as tfds
  splits[1] = tfds.core.SplitInfo(name='round_1', shard_lengths=[1], num_bytes=len(data))
  rounds.write_metadata(layout, tfds.builder_from_directory(layout.version_dir).info.features,
                        splits)
  data = rounds_data.RlifDataset(str(tmp_path / 'data'), 'ds')
  assert data.load_round(0).episodes == 1
  with pytest.raises(rounds_data.DatasetError, match=r'round 1, episode bad-episode: reward '
                     r'holds NaN/inf at steps \[1\]'):
    data.load_round(1)
