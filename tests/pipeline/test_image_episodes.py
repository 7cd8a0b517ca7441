"""Raw format v2: dict observations with camera images, through the job into RLDS steps whose
`observation` is a FeaturesDict (images as PNG-encoded `tfds.features.Image`)."""

import glob
import io
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pipeline import raw_format
from pipeline import raw_writer
from pipeline import rejection
from pipeline import round_job
from pipeline import schema as sc
from pipeline.validate import validate_episode

T = 6
STATE_DIM, ACTION_DIM = 5, 3
CAMERA = (16, 16, 3)


def episode(seed, camera=CAMERA, state_dim=STATE_DIM, steps=T):
  """A v2 episode: a random camera and state, one takeover at steps 2-3 (-1 reward at step 1)."""
  rng = np.random.default_rng(seed)
  observations = {'camera': rng.integers(0, 256, (steps + 1, *camera), dtype=np.uint8),
                  'state': rng.normal(size=(steps + 1, state_dim)).astype(np.float32)}
  flags = np.zeros(steps, bool)
  flags[2:4] = True
  return dict(observations=observations,
              actions=rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32),
              interventions=flags,
              policy_actions=rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32),
              terminated=False, metadata={'episode_id': f'cam-{seed}'})


def write(directory, name, ep):
  os.makedirs(directory, exist_ok=True)
  raw_writer.write_npz_episode(os.path.join(directory, name), **ep)


def write_arrays(directory, name, **arrays):
  """An npz written directly (for files the writer would never produce)."""
  os.makedirs(directory, exist_ok=True)
  np.savez(os.path.join(directory, name), **arrays)


def read_round(version_dir, round_index):
  builder = tfds.builder_from_directory(version_dir)
  episodes = tfds.as_numpy(builder.as_dataset(split=sc.split_name(round_index)))
  return {e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode():
          {k: list(e[sc.STEPS]) if k == sc.STEPS else e[k] for k in e} for e in episodes}


def dead_letters(version_dir, round_index):
  folder = os.path.join(version_dir, 'rejected', sc.split_name(round_index))
  records = [json.load(open(p)) for p in glob.glob(os.path.join(folder, '*.json'))]
  return {r['episode_id'] or r['source']: r for r in records}


def check_episode_bit_exact(stored, ep):
  steps = stored[sc.STEPS]
  assert len(steps) == T + 1
  for t, step in enumerate(steps):
    assert set(step[sc.OBSERVATION]) == {'camera', 'state'}
    assert step[sc.OBSERVATION]['camera'].dtype == np.uint8
    np.testing.assert_array_equal(step[sc.OBSERVATION]['camera'], ep['observations']['camera'][t])
    np.testing.assert_array_equal(step[sc.OBSERVATION]['state'], ep['observations']['state'][t])
    if t < T:
      np.testing.assert_array_equal(step[sc.ACTION], ep['actions'][t])
      np.testing.assert_array_equal(step[sc.POLICY_ACTION], ep['policy_actions'][t])
  assert [float(s[sc.REWARD]) for s in steps] == [0, -1, 0, 0, 0, 0, 0]
  assert [bool(s[sc.IS_INTERVENTION]) for s in steps] == [0, 0, 1, 1, 0, 0, 0]
  assert [bool(s[sc.IS_LAST]) for s in steps] == [0] * T + [1]


@pytest.mark.parametrize('runner', ['plain', 'beam'])
def test_image_episodes_go_through_a_round_bit_exact(tmp_path, runner):
  inputs, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
  good = [episode(seed) for seed in range(3)]
  for i, ep in enumerate(good):
    write(inputs, f'ep{i}.npz', ep)
  result = round_job.run_round([os.path.join(inputs, '*')], out, 'cams', 0, runner=runner)
  assert result.report['episodes_written'] == 3 and result.report['episodes_rejected'] == 0
  assert result.report['negative_rewards'] == 3 and result.report['transitions'] == 3 * T
  assert result.report['observation_dim'] is None
  assert result.report['observation_spec'] == [
      {'name': 'camera', 'shape': [16, 16, 3], 'kind': 'image'},
      {'name': 'state', 'shape': [5], 'kind': 'vector'}]

  builder = tfds.builder_from_directory(result.version_dir)
  observation = builder.info.features[sc.STEPS].feature[sc.OBSERVATION]
  assert isinstance(observation['camera'], tfds.features.Image)
  assert observation['camera'].encoding_format == 'png'
  assert isinstance(observation['state'], tfds.features.Tensor)
  assert sc.dims_of_features(builder.info.features) == (
      (sc.ObservationField('camera', CAMERA), sc.ObservationField('state', (STATE_DIM,))),
      ACTION_DIM)
  stored = read_round(result.version_dir, 0)
  for ep in good:
    check_episode_bit_exact(stored[ep['metadata']['episode_id']], ep)


def test_the_trainer_reads_an_image_dataset(tmp_path):
  from trainer import rounds_data  # a join between two stages: the pipeline's output, read
  inputs, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
  ep = episode(0)
  write(inputs, 'ep.npz', ep)
  round_job.run_round([os.path.join(inputs, '*')], out, 'cams', 0, runner='plain')
  data = rounds_data.RlifDataset(out, 'cams')
  assert data.observation_spec == (sc.ObservationField('camera', CAMERA),
                                   sc.ObservationField('state', (STATE_DIM,)))
  transitions = data.load_round(0).transitions
  np.testing.assert_array_equal(transitions['observation']['camera'],
                                ep['observations']['camera'][:-1])
  np.testing.assert_array_equal(transitions['next_observation']['camera'],
                                ep['observations']['camera'][1:])


def test_takeover_drop_segments_keep_their_frames(tmp_path):
  inputs, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
  ep = episode(7)
  write(inputs, 'ep.npz', ep)
  result = round_job.run_round([os.path.join(inputs, '*')], out, 'cams', 0, runner='plain',
                               takeover='drop')
  builder = tfds.builder_from_directory(result.version_dir)
  segments = sorted(tfds.as_numpy(builder.as_dataset(split='round_0')),
                    key=lambda e: e[sc.EPISODE_METADATA][sc.SEGMENT])
  # The takeover covers steps 2-3: segment 0 is steps 0..2, segment 1 steps 3..6.
  for segment, first in zip(segments, (0, 3)):
    frames = np.stack([s[sc.OBSERVATION]['camera'] for s in segment[sc.STEPS]])
    np.testing.assert_array_equal(
        frames, ep['observations']['camera'][first:first + len(frames)])
  assert [len(list(s[sc.STEPS])) for s in segments] == [3, 4]


def test_bad_image_input_is_dead_lettered_with_its_reason(tmp_path):
  inputs, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
  for seed in range(3):
    write(inputs, f'good{seed}.npz', episode(seed))
  meta = lambda name: np.array(json.dumps({'episode_id': name}))
  ep = episode(10)
  obs, act = ep['observations'], ep['actions']
  # Wrong dtype: a float camera.
  write_arrays(inputs, 'float_camera.npz', **{
      'observations/camera': obs['camera'].astype(np.float32) / 255,
      'observations/state': obs['state'], 'actions': act, 'metadata': meta('float_camera')})
  # A field missing on some steps: the camera logged on T of T+1 steps.
  write_arrays(inputs, 'short_camera.npz', **{
      'observations/camera': obs['camera'][:T], 'observations/state': obs['state'],
      'actions': act, 'metadata': meta('short_camera')})
  # Both formats in one file.
  write_arrays(inputs, 'mixed.npz', **{
      'observations': obs['state'], 'observations/camera': obs['camera'],
      'actions': act, 'metadata': meta('mixed')})
  # A camera of another shape than the round's (the first round fixes the spec: 16x16x3).
  write(inputs, 'other_shape.npz', dict(episode(11, camera=(8, 8, 3)),
                                        metadata={'episode_id': 'other_shape'}))
  # Two channels: not an image PNG stores.
  write(inputs, 'two_channels.npz', dict(episode(12, camera=(16, 16, 2)),
                                         metadata={'episode_id': 'two_channels'}))
  # NaN in the state vector is caught; images have no NaN check.
  nan = episode(13)
  nan['observations']['state'][3, 1] = np.nan
  write(inputs, 'nan_state.npz', dict(nan, metadata={'episode_id': 'nan_state'}))

  result = round_job.run_round([os.path.join(inputs, '*')], out, 'cams', 0, runner='plain')
  assert result.report['episodes_written'] == 3
  letters = dead_letters(result.version_dir, 0)
  reasons = {k: v['reason'] for k, v in letters.items()}
  assert reasons == {
      'float_camera': rejection.INVALID_IMAGE,
      'short_camera': rejection.INCONSISTENT_DIMENSIONS,
      'mixed.npz': rejection.MIXED_OBSERVATION_FORMATS,
      'other_shape': rejection.OBSERVATION_SPEC_MISMATCH,
      'two_channels': rejection.INVALID_IMAGE,
      'nan_state': rejection.NON_FINITE,
  }
  assert 'images must be uint8' in letters['float_camera']['detail']
  assert "'camera': 6" in letters['short_camera']['detail']
  assert '8x8x3' in letters['other_shape']['detail']
  assert 'observations/state' in letters['nan_state']['detail']
  assert result.report['episodes_rejected'] == 6


def test_a_later_round_with_another_observation_spec_is_refused_per_episode(tmp_path):
  out = str(tmp_path / 'out')
  write(str(tmp_path / 'r0'), 'ep.npz', episode(0))
  round_job.run_round([str(tmp_path / 'r0' / '*')], out, 'cams', 0, runner='plain')
  write(str(tmp_path / 'r1'), 'bigger.npz', dict(episode(1, camera=(32, 32, 3)),
                                                 metadata={'episode_id': 'bigger'}))
  write(str(tmp_path / 'r1'), 'more_state.npz', dict(episode(2, state_dim=7),
                                                     metadata={'episode_id': 'more_state'}))
  flat = episode(3)
  flat['observations'] = flat['observations']['state']
  write(str(tmp_path / 'r1'), 'flat.npz', dict(flat, metadata={'episode_id': 'flat'}))
  write(str(tmp_path / 'r1'), 'same.npz', dict(episode(4), metadata={'episode_id': 'same'}))
  result = round_job.run_round([str(tmp_path / 'r1' / '*')], out, 'cams', 1, runner='plain')
  assert result.report['episodes_written'] == 1
  letters = dead_letters(result.version_dir, 1)
  assert {k: v['reason'] for k, v in letters.items()} == {
      k: rejection.OBSERVATION_SPEC_MISMATCH for k in ('bigger', 'more_state', 'flat')}
  assert 'state: 7-D float32' in letters['more_state']['detail']
  assert 'observations are 5-D' in letters['flat']['detail']
  assert list(read_round(result.version_dir, 1)) == ['same']


def test_a_flat_dataset_refuses_dict_episodes(tmp_path):
  out = str(tmp_path / 'out')
  flat = episode(0)
  flat['observations'] = flat['observations']['state']
  write(str(tmp_path / 'r0'), 'flat.npz', flat)
  round_job.run_round([str(tmp_path / 'r0' / '*')], out, 'flat', 0, runner='plain')
  write(str(tmp_path / 'r1'), 'cam.npz', episode(1))
  result = round_job.run_round([str(tmp_path / 'r1' / '*')], out, 'flat', 1, runner='plain')
  letters = dead_letters(result.version_dir, 1)
  assert letters['cam-1']['reason'] == rejection.OBSERVATION_SPEC_MISMATCH
  assert 'the dataset holds 5-D' in letters['cam-1']['detail']


def test_v1_files_read_as_before():
  ep = episode(0)
  ep['observations'] = ep['observations']['state']
  raw = raw_format.parse_npz_episode(raw_writer.npz_bytes(**ep), 'ep.npz')
  assert isinstance(raw.observations, np.ndarray) and raw.observations.dtype == np.float32
  np.testing.assert_array_equal(raw.observations, ep['observations'])
  with np.load(io.BytesIO(raw_writer.npz_bytes(**ep))) as arrays:
    assert 'observations' in arrays.files


def test_step_streams_hold_dict_observations_of_vectors():
  ep = episode(0)
  vectors = dict(ep, observations={'state': ep['observations']['state'],
                                   'gripper': ep['observations']['state'][:, :2]})
  records = [raw_format.StepRecord(r['episode_id'], r['step'], json.loads(json.dumps(r)),
                                   'x.jsonl', i)
             for i, r in enumerate(raw_writer.step_records(**vectors))]
  raw = raw_format.assemble_episode('cam-0', records)
  assert sorted(raw.observations) == ['gripper', 'state']
  np.testing.assert_array_equal(raw.observations['gripper'], ep['observations']['state'][:, :2])
  validate_episode(raw)
  assert sc.observation_spec(raw.observations) == (sc.ObservationField('gripper', (2,)),
                                                   sc.ObservationField('state', (5,)))
  with pytest.raises(ValueError, match='npz'):
    raw_writer.step_records(**ep)  # images are refused by the writer ...

  def lines(mutate):
    rs = [json.loads(json.dumps(r)) for r in raw_writer.step_records(**vectors)]
    mutate(rs)
    return [raw_format.StepRecord(r['episode_id'], r['step'], r, 'x.jsonl', i)
            for i, r in enumerate(rs)]

  def image(rs):
    rs[0]['observation']['state'] = [[0, 1], [2, 3]]
  def missing(rs):
    del rs[2]['observation']['gripper']
  def mixed(rs):
    rs[3]['observation'] = rs[3]['observation']['state']
  def ragged(rs):
    rs[4]['observation']['state'] = rs[4]['observation']['state'][:3]
  for mutate, reason in ((image, rejection.UNSUPPORTED_FEATURE),  # ... and by the reader
                         (missing, rejection.MISSING_FIELD),
                         (mixed, rejection.MIXED_OBSERVATION_FORMATS),
                         (ragged, rejection.INCONSISTENT_DIMENSIONS)):
    with pytest.raises(rejection.Rejected) as e:
      raw_format.assemble_episode('cam-0', lines(mutate))
    assert e.value.reason == reason, (mutate.__name__, e.value)


def test_a_step_stream_round_with_dict_observations(tmp_path):
  inputs, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
  os.makedirs(inputs)
  ep = episode(0)
  ep['observations'] = {'state': ep['observations']['state']}
  raw_writer.write_step_stream(os.path.join(inputs, 'a.jsonl'), raw_writer.step_records(**ep))
  result = round_job.run_round([os.path.join(inputs, '*')], out, 'vec', 0, runner='plain')
  assert result.report['episodes_written'] == 1
  steps = read_round(result.version_dir, 0)['cam-0'][sc.STEPS]
  np.testing.assert_array_equal(np.stack([s[sc.OBSERVATION]['state'] for s in steps]),
                                ep['observations']['state'])
