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


def write_camera_round(directory, data_dir, round_index, episodes=3, T=6, demos=False,
                       size=16, seed=0):
  """A round of raw format v2 episodes ({camera: uint8 [T+1, size, size, 3], state: [T+1, 5]},
  one takeover at steps 2-3 unless `demos`) through the pipeline; returns the raw episodes."""
  from pipeline import raw_writer
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed + round_index)
  written = []
  for i in range(episodes):
    observations = {
        'camera': rng.integers(0, 256, (T + 1, size, size, 3), dtype=np.uint8),
        'state': rng.normal(size=(T + 1, 5)).astype(np.float32)}
    flags = np.zeros(T, bool)
    flags[2:4] = True
    actions = rng.uniform(-1, 1, (T, 3)).astype(np.float32)
    raw_writer.write_npz_episode(
        os.path.join(directory, f'cam{round_index}_{i}.npz'), observations, actions,
        {'episode_id': f'cam-r{round_index}-{i}'}, interventions=None if demos else flags)
    written.append((observations, actions))
  round_job.run_round([os.path.join(directory, '*.npz')], data_dir, 'cams', round_index,
                      runner='plain')
  return written


def test_an_image_dataset_loads_with_its_frames_as_uint8(tmp_path):
  from pipeline import schema as sc
  written = write_camera_round(str(tmp_path / 'raw'), str(tmp_path / 'data'), 0)
  data = rounds_data.RlifDataset(str(tmp_path / 'data'), 'cams')
  assert data.observation_spec == (sc.ObservationField('camera', (16, 16, 3)),
                                   sc.ObservationField('state', (5,)))
  assert data.observation_dim == data.observation_spec and data.action_dim == 3
  r0 = data.load_round(0)
  t = r0.transitions
  assert r0.episodes == 3 and (t['reward'] == -1).sum() == 3
  assert t['observation']['camera'].dtype == np.uint8
  assert t['observation']['camera'].shape == (18, 16, 16, 3)
  frames = {tuple(f.ravel()[:16]) for obs, _ in written for f in obs['camera']}
  assert {tuple(f.ravel()[:16]) for f in t['next_observation']['camera']} <= frames
  # Pairs stay inside an episode: each next frame is the frame after the observed one.
  by_first_pixels = {tuple(f.ravel()[:16]): (e, s) for e, (obs, _) in enumerate(written)
                     for s, f in enumerate(obs['camera'])}
  for before, after in zip(t['observation']['camera'], t['next_observation']['camera']):
    e, s = by_first_pixels[tuple(before.ravel()[:16])]
    np.testing.assert_array_equal(after, written[e][0]['camera'][s + 1])
