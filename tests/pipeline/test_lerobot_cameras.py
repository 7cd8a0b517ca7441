"""LeRobot cameras as pipeline input: datasets written by lerobot itself (fixtures/lerobot/
make_fixtures.py: `hil_cam` with an AV1 video camera and a PNG image camera, v2.1 by lerobot
0.3.3 and v3.0 by lerobot 0.6.1; `hil_cam_h264` with H.264 video, v3.0) through the round job,
read back with TFDS and compared with the frames decoded independently: PNG bytes from the
parquet rows with Pillow, every frame of the video file decoded in order by PyAV without
seeking."""

import glob
import importlib.util
import io
import json
import os
import subprocess
import sys

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from pipeline import lerobot_cameras as lc
from pipeline import lerobot_format as lf
from pipeline import rejection
from pipeline import round_job
from pipeline import rounds
from pipeline import schema as sc
from pipeline import video_frames
from pipeline.rejection import Rejected
from tests.pipeline import lerobot_fixtures

FIXTURES = lerobot_fixtures.FIXTURES
data_files = lerobot_fixtures.data_files
CAMERA_FIXTURES = (('v2.1', 'hil_cam'), ('v3.0', 'hil_cam'), ('v3.0', 'hil_cam_h264'))
FRONT, WRIST = 'observation.images.front', 'observation.images.wrist'
STATE = 'observation.state'
FPS = 10
LENGTHS = (8, 6, 12)


def _fixture_script():
  spec = importlib.util.spec_from_file_location('make_fixtures',
                                                os.path.join(FIXTURES, 'make_fixtures.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)  # lerobot itself is imported only when writing
  return module


make_fixtures = _fixture_script()


def fixture(layout, name='hil_cam'):
  return lerobot_fixtures.fixture(layout, name)


def copy_of(layout, tmp_path, name, source='hil_cam'):
  return lerobot_fixtures.copy_of(layout, tmp_path, name, source)


def video_files(root):
  return sorted(glob.glob(os.path.join(root, 'videos', '**', '*.mp4'), recursive=True))


def episode_rows(root, index):
  table = pa.concat_tables(pq.read_table(path) for path in data_files(root))
  return table.filter(pc.equal(table['episode_index'], index)).sort_by('frame_index')


def decode_all(path):
  """Every frame of a video in decoding order, with its time: no seeking, no matching."""
  with av.open(path) as container:
    stream = container.streams.video[0]
    decoded = [(float(f.pts * stream.time_base), f.to_ndarray(format='rgb24'))
               for f in container.decode(stream)]
  return np.array([t for t, _ in decoded]), np.stack([f for _, f in decoded])


def independent_frames(root, layout):
  """{episode_index: {'front': [T, 32, 32, 3], 'wrist': ..., 'state': [T, 5]}} decoded without
  the reader. v3.0 keeps the episodes one after another in one video: episode e's frames are
  the file's frames from the sum of the earlier episodes' lengths on."""
  episodes = {}
  shared = decode_all(video_files(root)[0]) if layout == 'v3.0' else None
  if shared is not None:
    assert shared[1].shape[0] == sum(LENGTHS)  # one video frame per row, none more
  offset = 0
  meta = {}
  if layout == 'v3.0':
    table = pq.read_table(glob.glob(os.path.join(root, 'meta', 'episodes', '*', '*.parquet'))[0])
    meta = {row['episode_index']: row for row in table.to_pylist()}
  for index, length in enumerate(LENGTHS):
    rows = episode_rows(root, index)
    assert rows.num_rows == length
    if shared is None:
      times, frames = decode_all(video_files(root)[index])
      assert frames.shape[0] == length
      start = 0.0
    else:
      times, frames = shared[0][offset:offset + length], shared[1][offset:offset + length]
      start = meta[index][f'videos/{FRONT}/from_timestamp']
      offset += length
    # The video frame at each row's position has the row's time (LeRobot's tolerance, 1e-4 s).
    stamps = start + np.array(rows['timestamp'].to_pylist(), np.float64)
    assert np.abs(times - stamps).max() < 1e-4
    wrist = np.stack([np.asarray(Image.open(io.BytesIO(v['bytes'])).convert('RGB'))
                      for v in rows[WRIST].to_pylist()])
    episodes[index] = {'front': frames, 'wrist': wrist,
                       'state': np.array(rows[STATE].to_pylist(), np.float32)}
  return episodes


def read_round(version_dir, split='round_0'):
  builder = tfds.builder_from_directory(version_dir)
  episodes = {}
  for episode in tfds.as_numpy(builder.as_dataset(split=split)):
    observations = [s[sc.OBSERVATION] for s in episode[sc.STEPS]]
    episodes[episode[sc.EPISODE_METADATA][sc.EPISODE_ID].decode()] = {
        k: np.stack([o[k] for o in observations]) for k in observations[0]}
  return episodes


def assert_episodes_equal(episodes, truth, name):
  assert sorted(episodes) == [lf.episode_id(name, i) for i in sorted(truth)]
  for index, frames in truth.items():
    observation = episodes[lf.episode_id(name, index)]
    assert sorted(observation) == ['front', 'state', 'wrist']
    for field in ('front', 'wrist', 'state'):
      np.testing.assert_array_equal(observation[field], frames[field], err_msg=field)


# ----------------------------------------------------------------------------- conversion


@pytest.mark.parametrize('layout, name', CAMERA_FIXTURES)
def test_camera_fixture_converts_into_rlds_images(layout, name, tmp_path):
  root = fixture(layout, name)
  result = round_job.run_round([root], str(tmp_path / 'out'), 'cams', 0, runner='plain')
  report = result.report
  assert (report['episodes_written'], report['episodes_rejected']) == (3, 0)
  assert report['observation_spec'] == [
      {'name': 'front', 'shape': [32, 32, 3], 'kind': 'image'},
      {'name': 'state', 'shape': [5], 'kind': 'vector'},
      {'name': 'wrist', 'shape': [32, 32, 3], 'kind': 'image'}]
  truth = independent_frames(root, layout)
  episodes = read_round(result.version_dir)
  assert_episodes_equal(episodes, truth, name)
  # The right frames, not just equal decodings: each video frame is nearer to the frame
  # lerobot was given for its row than to that row's neighbours'; PNG frames are exact.
  for index, length in enumerate(LENGTHS):
    given = {camera: np.stack([make_fixtures.camera_frame(index, f, camera)
                               for f in range(length)]).astype(int)
             for camera in (FRONT, WRIST)}
    observation = episodes[lf.episode_id(name, index)]
    np.testing.assert_array_equal(observation['wrist'], given[WRIST])
    error = np.abs(observation['front'][:, None].astype(int) - given[FRONT][None]).mean(
        axis=(2, 3, 4))  # [row, given frame]
    assert (error.argmin(axis=1) == np.arange(length)).all() and error.diagonal().max() < 10
  builder = tfds.builder_from_directory(result.version_dir)
  image = builder.info.features[sc.STEPS][sc.OBSERVATION]['front']
  assert isinstance(image, tfds.features.Image) and image.shape == (32, 32, 3)
  extra = json.loads(next(iter(tfds.as_numpy(builder.as_dataset(split='round_0'))))[
      sc.EPISODE_METADATA][sc.EXTRA_METADATA_JSON])
  assert extra['lerobot']['cameras'] == {'front': FRONT, 'wrist': WRIST}
  assert report['settings']['lerobot']['images'] is None
  assert report['settings']['lerobot']['timestamp_tolerance_s'] == 1e-4
  again = round_job.run_round([root], str(tmp_path / 'out'), 'cams', 0, runner='plain')
  assert again.status == 'unchanged'


def test_beam_runner_writes_the_same_camera_episodes(tmp_path):
  root = fixture('v3.0')
  result = round_job.run_round([root], str(tmp_path / 'out'), 'cams', 0)
  assert result.report['episodes_written'] == 3
  assert_episodes_equal(read_round(result.version_dir), independent_frames(root, 'v3.0'),
                        'hil_cam')


# ----------------------------------------------------------------------------- dead letters


def rewrite_column(path, name, transform):
  table = pq.read_table(path)
  index = table.schema.get_field_index(name)
  values = transform(table)
  pq.write_table(table.set_column(index, table.schema.field(index), values), path)


def shift_timestamp(table, episode, frame, seconds):
  stamps = np.array(table['timestamp'].to_pylist(), np.float32)
  rows = np.flatnonzero((np.array(table['episode_index'].to_pylist()) == episode)
                        & (np.array(table['frame_index'].to_pylist()) == frame))
  stamps[rows] += seconds
  return pa.array(stamps, pa.float32())


def corrupt_png(table, episode, frame):
  values = table[WRIST].to_pylist()
  for row, (e, f) in enumerate(zip(table['episode_index'].to_pylist(),
                                   table['frame_index'].to_pylist())):
    if (e, f) == (episode, frame):
      values[row] = dict(values[row], bytes=values[row]['bytes'][:20] + b'\0' * 40)
  return pa.array(values, table.schema.field(WRIST).type)


@pytest.mark.parametrize('layout', ('v2.1', 'v3.0'))
def test_bad_cameras_are_dead_lettered_with_their_reason(layout, tmp_path):
  """Five damaged copies in one round: a deleted video, a row timestamp 30 ms off its frame,
  a video overwritten with garbage, a camera size in info.json that the frames do not have, a
  damaged PNG. v2.1 has one video per episode (episode 1's is damaged); v3.0 one video for all
  three, so damaging it rejects every episode. The rest is written."""
  v2 = layout == 'v2.1'
  names = ('novideo', 'timestamp', 'garbage', 'size', 'png')
  roots = {n: copy_of(layout, tmp_path, n) for n in names}
  os.remove(video_files(roots['novideo'])[1 if v2 else 0])
  data = lambda root: data_files(root)[1 if v2 else 0]
  rewrite_column(data(roots['timestamp']), 'timestamp',
                 lambda t: shift_timestamp(t, episode=1, frame=4, seconds=0.03))
  with open(video_files(roots['garbage'])[1 if v2 else 0], 'wb') as f:
    f.write(b'this is not a video' * 50)
  info_path = os.path.join(roots['size'], 'meta', 'info.json')
  with open(info_path) as f:
    info = json.load(f)
  info['features'][FRONT]['shape'] = [24, 32, 3]
  with open(info_path, 'w') as f:
    json.dump(info, f)
  rewrite_column(data(roots['png']), WRIST, lambda t: corrupt_png(t, episode=1, frame=2))

  result = round_job.run_round([roots[n] for n in names], str(tmp_path / 'out'), 'cams', 0,
                               runner='plain')
  report = result.report
  shared = [1] if v2 else [0, 1, 2]
  expected = {('novideo', rejection.MISSING_VIDEO_FILE): shared,
              ('timestamp', rejection.VIDEO_TIMESTAMP_MISMATCH): [1],
              ('garbage', rejection.UNDECODABLE_VIDEO): shared,
              ('size', rejection.FEATURE_MISMATCH): [0, 1, 2],
              ('png', rejection.UNDECODABLE_IMAGE): [1]}
  seen = {}
  for record in report['rejected']:
    name = record['episode_id'].split('-ep')[0]
    seen.setdefault((name, record['reason']), []).append(int(record['episode_id'][-6:]))
    # Damage to the video camera names its video file; the PNG camera's, the data file.
    assert record['source'].startswith(f'{name}/data/' if name == 'png' else f'{name}/videos/')
  assert {k: sorted(v) for k, v in seen.items()} == expected
  rejected = sum(len(v) for v in expected.values())
  assert report['input_episodes'] == 15
  assert (report['episodes_rejected'], report['episodes_written']) == (rejected, 15 - rejected)

  details = {r['reason']: r['detail'] for r in report['rejected']}
  assert 'does not exist' in details[rejection.MISSING_VIDEO_FILE]
  assert ('no video frame within 0.0001 s of the timestamp of frame(s) 4 '
          in details[rejection.VIDEO_TIMESTAMP_MISMATCH])
  assert 'cannot be decoded' in details[rejection.UNDECODABLE_VIDEO]
  assert ('decoded frames are 32x32x3; meta/info.json says 24x32x3'
          in details[rejection.FEATURE_MISMATCH])
  assert 'frame 2 is not a decodable image (no image format' in details[
      rejection.UNDECODABLE_IMAGE]
  assert all(FRONT in details[r] for r in (rejection.MISSING_VIDEO_FILE,
                                           rejection.VIDEO_TIMESTAMP_MISMATCH,
                                           rejection.UNDECODABLE_VIDEO))

  # Undamaged episodes are written as lerobot stored them.
  episodes = read_round(result.version_dir)
  truth = independent_frames(fixture(layout), layout)
  for (name, _), lost in expected.items():
    kept = {i: frames for i, frames in truth.items() if i not in lost}
    assert_episodes_equal({k: v for k, v in episodes.items() if k.startswith(f'{name}-')},
                          kept, name)


def test_a_wider_tolerance_takes_a_shifted_frame(tmp_path):
  """The tolerance is a setting: 30 ms off is refused at LeRobot's 1e-4 s, and matched to the
  same (nearest) frame at half a frame interval."""
  root = copy_of('v3.0', tmp_path, 'shifted')
  rewrite_column(data_files(root)[0], 'timestamp',
                 lambda t: shift_timestamp(t, episode=1, frame=4, seconds=0.03))
  ref = lf.list_episodes(root)[1]
  with pytest.raises(Rejected) as e:
    lf.read_episode(ref)
  assert e.value.reason == rejection.VIDEO_TIMESTAMP_MISMATCH
  loose = lf.read_episode(ref, lf.LeRobotColumns(timestamp_tolerance_s=0.5 / FPS))
  np.testing.assert_array_equal(loose.observations['front'],
                                independent_frames(fixture('v3.0'), 'v3.0')[1]['front'])


# ----------------------------------------------------------------------------- which cameras


def test_the_image_columns_setting_chooses_the_cameras(tmp_path):
  root = copy_of('v2.1', tmp_path, 'choose')
  refs = lf.list_episodes(root)
  none = lf.read_episode(refs[0], lf.LeRobotColumns(images=()))  # vectors only, as before
  assert isinstance(none.observations, np.ndarray) and none.observations.shape == (8, 5)
  assert 'cameras' not in none.metadata['lerobot']
  assert lf.dims(root, lf.LeRobotColumns(images=())) == (5, 3)

  os.remove(video_files(root)[0])  # Not read, so not needed ...
  wrist = lf.read_episode(refs[0], lf.LeRobotColumns(images=(WRIST,)))
  assert sorted(wrist.observations) == ['state', 'wrist']
  missing = lf.missing_video_files(refs, lf.LeRobotColumns(images=(WRIST,)))
  assert [(r.reason, r.counts_as_episode) for r in missing] == [
      (rejection.MISSING_VIDEO_FILE, False)]  # ... only reported.
  assert lf.missing_video_files(refs) == []  # Read by default: the episode is rejected instead.
  with pytest.raises(Rejected) as e:
    lf.read_episode(refs[0])
  assert e.value.reason == rejection.MISSING_VIDEO_FILE and e.value.counts_as_episode

  for images, reason in (((STATE,), rejection.UNSUPPORTED_FEATURE),
                         (('observation.images.top',), rejection.MISSING_FIELD)):
    with pytest.raises(Rejected) as e:
      lf.read_episode(refs[1], lf.LeRobotColumns(images=images))
    assert e.value.reason == reason
  with pytest.raises(Rejected) as e:  # A camera named as a vector observation.
    lf.read_episode(refs[1], lf.LeRobotColumns(observations=(FRONT,)))
  assert e.value.reason == rejection.UNSUPPORTED_FEATURE and '--lerobot_image_columns' in str(
      e.value)


def test_fingerprint_covers_the_videos_of_cameras_read(tmp_path):
  root = copy_of('v3.0', tmp_path, 'fp')
  video = video_files(root)[0]
  files = round_job.expand_inputs([root])
  assert video in round_job.fingerprint_paths(files)
  assert video not in round_job.fingerprint_paths(files, lf.LeRobotColumns(images=(WRIST,)))
  before = rounds.input_fingerprint(round_job.fingerprint_paths(files), {})
  with open(video, 'ab') as f:
    f.write(b'\0')
  assert rounds.input_fingerprint(round_job.fingerprint_paths(files), {}) != before
  # Rounds that read no camera keep the settings (and fingerprints) they had.
  assert set(lf.LeRobotColumns().settings()) == {
      'observations', 'action', 'intervention', 'policy_action', 'done', 'reader_version'}
  assert lf.LeRobotColumns().settings(cameras=True)['camera_reader_version'] == 1


def test_the_command_line_sets_the_image_columns(tmp_path):
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  command = [sys.executable, '-m', 'pipeline.main', f'--input={fixture("v3.0")}',
             f'--output_dir={tmp_path}', '--dataset=cams', '--round=0', '--engine=plain',
             f'--lerobot_image_columns={WRIST}', '--lerobot_timestamp_tolerance_s=0.01']
  out = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  manifest = rounds.read_manifest(rounds.DatasetLayout(str(tmp_path), 'cams'), 0)
  assert manifest['report']['episodes_written'] == 3
  assert [f['name'] for f in manifest['report']['observation_spec']] == ['state', 'wrist']
  assert manifest['settings']['lerobot']['images'] == [WRIST]
  assert manifest['settings']['lerobot']['timestamp_tolerance_s'] == 0.01


# ----------------------------------------------------------------------------- the parts


def test_field_names_and_shapes_from_info():
  assert [lc.field_name(k) for k in (FRONT, 'observation.image', 'observation.images.cam-high',
                                     'top.rgb', 'observation.images.0')] == [
      'front', 'image', 'cam_high', 'top_rgb', '_0']
  assert lc.frame_shape({'shape': [3, 48, 64], 'names': ['channels', 'height', 'width']}) == (
      48, 64, 3)
  assert lc.frame_shape({'shape': [48, 64, 3], 'names': ['height', 'width', 'channel']}) == (
      48, 64, 3)

  def reject(reason, detail):
    return Rejected(reason, detail, 'x')

  features = {'observation.images.state': {'dtype': 'video', 'shape': [8, 8, 3]}}
  with pytest.raises(Rejected, match='both be the observation field `state`'):
    lc.plan(features, None, reject)
  depth = {'observation.images.depth': {'dtype': 'video', 'shape': [8, 8, 1],
                                        'info': {'is_depth_map': True}}}
  with pytest.raises(Rejected) as e:
    lc.plan(depth, None, reject)
  assert e.value.reason == rejection.UNSUPPORTED_FEATURE and 'depth map' in e.value.detail
  gray = {'observation.images.ir': {'dtype': 'image', 'shape': [8, 8, 1]}}
  assert lc.plan(gray, None, reject) == (lc.Camera('observation.images.ir', 'ir', 'image',
                                                   (8, 8, 1)),)


def test_nearest_frame_rule_on_literal_times():
  """LeRobot's rule: nearest frame, strictly within the tolerance; ties to the earlier frame."""
  matcher = video_frames.NearestFrames(np.array([0.0, 0.1, 0.2, 0.25]), tolerance_s=0.06)
  for t in (0.3, 0.2, 0.1, 0.0):  # any order
    matcher.offer(t, np.full((1, 1, 1), int(t * 10), np.uint8))
  assert matcher.frames()[:, 0, 0, 0].tolist() == [0, 1, 2, 3]  # 0.25: tie, 0.3 came first
  strict = video_frames.NearestFrames(np.array([0.0, 0.05]), tolerance_s=0.05)
  strict.offer(0.0, np.zeros((1, 1, 1), np.uint8))
  with pytest.raises(video_frames.FramesNotMatched) as e:
    strict.frames()
  assert e.value.missing.tolist() == [1] and e.value.nearest[1] == pytest.approx(0.05)


def test_only_the_episodes_window_of_a_shared_video_is_kept(monkeypatch):
  """Episode 2 of the v3.0 fixture is frames 14-25 of a 26-frame file: the decoder seeks to the
  key frame before it and keeps only frames in its window, so memory is one episode's."""
  offered = []
  original = video_frames.NearestFrames.offer
  monkeypatch.setattr(video_frames.NearestFrames, 'offer',
                      lambda self, t, image: (offered.append(t), original(self, t, image)))
  video = video_files(fixture('v3.0'))[0]
  queries = 1.4 + np.arange(12) / FPS
  frames = video_frames.frames_at(video, queries, 1e-4)
  np.testing.assert_allclose(offered, queries, atol=1e-9)
  np.testing.assert_array_equal(frames, decode_all(video)[1][14:])
