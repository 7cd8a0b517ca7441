"""LeRobot datasets as pipeline input: fixtures written by lerobot itself (v2.1 by lerobot 0.3.3,
v3.0 by lerobot 0.6.1; fixtures/lerobot/make_fixtures.py) through the real round job, read back
with TFDS and compared with the parquet files read directly with pyarrow."""

import glob
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tensorflow_datasets as tfds

from pipeline import lerobot_format as lf
from pipeline import rejection
from pipeline import relabel as rl
from pipeline import round_job
from pipeline import rounds
from pipeline import schema as sc
from pipeline.rejection import Rejected
from tests.pipeline import lerobot_fixtures

FIXTURES = lerobot_fixtures.FIXTURES
data_files = lerobot_fixtures.data_files
LAYOUTS = ('v2.1', 'v3.0')
STATE, ENV = 'observation.state', 'observation.environment_state'
FLAG, POLICY = 'complementary_info.is_intervention', 'complementary_info.policy_action'


def fixture(layout, name='hil_tiny'):
  return lerobot_fixtures.fixture(layout, name)


def copy_of(layout, tmp_path, name, source='hil_tiny'):
  return lerobot_fixtures.copy_of(layout, tmp_path, name, source)


def ground_truth(root):
  """{episode_index: {column: [T, n] array in frame order}} straight from the parquet files."""
  table = pa.concat_tables(pq.read_table(path) for path in data_files(root))
  episodes = {}
  for index in sorted(set(table['episode_index'].to_pylist())):
    rows = table.filter(pc.equal(table['episode_index'], index)).sort_by('frame_index')
    episodes[index] = {name: np.array(rows[name].to_pylist(), dtype=np.float32).reshape(
        rows.num_rows, -1) for name in (STATE, ENV, 'action', FLAG, POLICY, 'next.done')}
  return episodes


def read_round(version_dir, split):
  builder = tfds.builder_from_directory(version_dir)
  episodes = {}
  for episode in tfds.as_numpy(builder.as_dataset(split=split)):
    steps = {k: np.stack([s[k] for s in episode[sc.STEPS]]) for k in (
        sc.OBSERVATION, sc.ACTION, sc.POLICY_ACTION, sc.REWARD, sc.DISCOUNT, sc.IS_LAST,
        sc.IS_TERMINAL, sc.IS_INTERVENTION)}
    episodes[episode[sc.EPISODE_METADATA][sc.EPISODE_ID].decode()] = (
        steps, episode[sc.EPISODE_METADATA])
  return episodes


def assert_matches_parquet(episodes, truth, name, observation_columns=(STATE,)):
  """Every RLDS episode is its LeRobot episode: T frames -> T-1 transitions, bit-exact."""
  assert sorted(episodes) == [lf.episode_id(name, i) for i in sorted(truth)]
  for index, frames in truth.items():
    steps, metadata = episodes[lf.episode_id(name, index)]
    T = frames['action'].shape[0]
    observations = np.concatenate([frames[c] for c in observation_columns], axis=1)
    np.testing.assert_array_equal(steps[sc.OBSERVATION], observations)
    np.testing.assert_array_equal(steps[sc.ACTION][:-1], frames['action'][:-1])
    np.testing.assert_array_equal(steps[sc.POLICY_ACTION][:-1], frames[POLICY][:-1])
    flags = frames[FLAG][:, 0] != 0
    np.testing.assert_array_equal(steps[sc.IS_INTERVENTION], flags)
    np.testing.assert_array_equal(steps[sc.REWARD][:-1], rl.intervention_rewards(flags))
    done = bool(frames['next.done'][-1, 0])
    assert steps[sc.IS_TERMINAL].tolist() == [False] * (T - 1) + [done]
    assert steps[sc.DISCOUNT][T - 2] == (0.0 if done else 1.0)
    assert steps[sc.IS_LAST].sum() == 1 and steps[sc.IS_LAST][-1]
    assert metadata[sc.HAS_POLICY_ACTION]
    extra = json.loads(metadata[sc.EXTRA_METADATA_JSON])
    assert extra['lerobot']['episode_index'] == index
    assert extra['lerobot']['frames'] == T
    assert extra['task'] == 'push the block to the goal'


@pytest.mark.parametrize('layout', LAYOUTS)
def test_fixture_converts_into_the_right_rlds_episodes(layout, tmp_path):
  root = fixture(layout)
  result = round_job.run_round([root], str(tmp_path / 'out'), 'lr', 0, runner='plain')
  truth = ground_truth(root)
  episodes = read_round(result.version_dir, 'round_0')
  assert_matches_parquet(episodes, truth, 'hil_tiny')
  # What the fixture script recorded: a takeover on frames 3-5 of episode 0; episode 1 ends
  # with next.done; takeovers on frames 2-3 and on the last frame (11) of episode 2.
  rewards = {i: np.flatnonzero(episodes[lf.episode_id('hil_tiny', i)][0][sc.REWARD]).tolist()
             for i in truth}
  assert rewards == {0: [2], 1: [], 2: [1, 10]}
  assert [episodes[lf.episode_id('hil_tiny', i)][0][sc.IS_TERMINAL][-1] for i in truth] == [
      False, True, False]
  extra = json.loads(episodes['hil_tiny-ep000001'][1][sc.EXTRA_METADATA_JSON])
  assert extra['lerobot']['codebase_version'] == layout and extra['lerobot']['fps'] == 10
  report = result.report
  assert (report['episodes_written'], report['episodes_rejected']) == (3, 0)
  assert (report['transitions'], report['takeovers'], report['negative_rewards']) == (23, 3, 3)
  assert report['terminated_episodes'] == 1 and report['settings']['lerobot']['action'] == 'action'
  again = round_job.run_round([root], str(tmp_path / 'out'), 'lr', 0, runner='plain')
  assert again.status == 'unchanged'


def test_beam_runner_concatenates_observation_columns_in_the_given_order(tmp_path):
  root = fixture('v3.0')
  columns = lf.LeRobotColumns(observations=(ENV, STATE))
  result = round_job.run_round([root], str(tmp_path / 'out'), 'lr', 0, lerobot_columns=columns)
  assert result.report['observation_dim'] == 7 and result.report['episodes_written'] == 3
  assert_matches_parquet(read_round(result.version_dir, 'round_0'), ground_truth(root),
                         'hil_tiny', observation_columns=(ENV, STATE))


def rewrite(path, table):
  pq.write_table(table, path)


def drop_frame(path, episode, frame):
  table = pq.read_table(path)
  keep = pc.invert(pc.and_(pc.equal(table['episode_index'], episode),
                           pc.equal(table['frame_index'], frame)))
  rewrite(path, table.filter(keep))


@pytest.mark.parametrize('layout', LAYOUTS)
def test_bad_lerobot_input_is_dead_lettered_with_its_reason(layout, tmp_path):
  """Four damaged datasets in one round: NaN written through lerobot, a dropped frame, a column
  removed from the data, a deleted parquet file. The rest of each dataset is still written."""
  nan = copy_of(layout, tmp_path, 'nan', source='hil_tiny_nan')
  gap, no_column, no_file = (copy_of(layout, tmp_path, n) for n in ('gap', 'nocol', 'nofile'))
  v2 = layout == 'v2.1'
  # v2.1 has one file per episode: damage episode 1's. v3.0 keeps all episodes in one file.
  target = lambda root: data_files(root)[1 if v2 else 0]
  drop_frame(target(gap), episode=1, frame=3)
  rewrite(target(no_column), pq.read_table(target(no_column)).drop_columns([FLAG]))
  os.remove(target(no_file))

  result = round_job.run_round([nan, gap, no_column, no_file], str(tmp_path / 'out'), 'lr', 0,
                               runner='plain')
  report = result.report
  all_three = [0, 1, 2]
  expected_rejected = {
      ('nan', rejection.NON_FINITE): [1],
      ('gap', rejection.STEP_GAP): [1],
      ('nocol', rejection.MISSING_FIELD): [1] if v2 else all_three,
      ('nofile', rejection.EPISODE_MISSING_FROM_DATA): [1] if v2 else all_three,
  }
  seen = {}
  for record in report['rejected']:
    name = record['episode_id'].split('-ep')[0]
    seen.setdefault((name, record['reason']), []).append(int(record['episode_id'][-6:]))
    assert record['source'].startswith(f'{name}/data/chunk-000/')
  assert {k: sorted(v) for k, v in seen.items()} == expected_rejected
  rejected = sum(len(v) for v in expected_rejected.values())
  assert (report['episodes_rejected'], report['episodes_written']) == (rejected, 12 - rejected)
  assert report['input_episodes'] == 12

  details = {r['reason']: r['detail'] for r in report['rejected']}
  assert 'observation.state' in details[rejection.NON_FINITE]
  assert 'first at frame 2 of episode 1' in details[rejection.NON_FINITE]
  assert 'frames missing: 3 ' in details[rejection.STEP_GAP]
  assert FLAG in details[rejection.MISSING_FIELD]
  assert 'does not exist' in details[rejection.EPISODE_MISSING_FROM_DATA]
  records = glob.glob(os.path.join(result.version_dir, 'rejected', 'round_0', '*.json'))
  assert len(records) == rejected

  # The episodes that were not damaged are written as they are in the parquet files.
  episodes = read_round(result.version_dir, 'round_0')
  truth = ground_truth(fixture(layout))
  for (name, _), lost in expected_rejected.items():
    kept = {i: frames for i, frames in truth.items() if i not in lost}
    assert_matches_parquet({k: v for k, v in episodes.items() if k.startswith(f'{name}-')},
                           kept, name)


# ----------------------------------------------------------------------------- the reader alone


def test_transition_rule_on_literal_frames():
  obs = np.arange(8, dtype=np.float32).reshape(4, 2)
  act = np.arange(4, dtype=np.float32).reshape(4, 1) + 10
  flags = np.array([False, False, False, True])  # Takeover on the last frame only.
  episode = lf.episode_from_frames(obs, act, flags, act + 1, np.array([0, 0, 0, 1], bool),
                                   {'episode_id': 'x'}, 'x')
  assert episode.observations.shape == (4, 2) and episode.num_transitions == 3
  np.testing.assert_array_equal(episode.actions[:, 0], [10, 11, 12])
  np.testing.assert_array_equal(episode.policy_actions[:, 0], [11, 12, 13])
  assert episode.terminated and episode.interventions.tolist() == flags.tolist()
  steps = rl.relabel(episode)[0].steps  # The last policy transition gets -1.
  assert steps[sc.REWARD].tolist() == [0, 0, -1, 0] and steps[sc.IS_TERMINAL][-1]


def test_intervention_column_is_required_unless_switched_off(tmp_path):
  ref = lf.list_episodes(fixture('v2.1'))[0]
  with pytest.raises(Rejected) as e:
    lf.read_episode(ref, lf.LeRobotColumns(intervention='complementary_info.takeover'))
  assert e.value.reason == rejection.MISSING_FIELD and "--lerobot_intervention_column=''" in str(
      e.value)
  demonstration = lf.read_episode(ref, lf.LeRobotColumns(intervention=''))
  assert demonstration.interventions is None and demonstration.num_transitions == 7


def edit_info(root, edit):
  path = os.path.join(root, 'meta', 'info.json')
  with open(path) as f:
    info = json.load(f)
  edit(info)
  with open(path, 'w') as f:
    json.dump(info, f)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_metadata_that_disagrees_with_the_data_is_rejected(layout, tmp_path):
  unknown = copy_of(layout, tmp_path, 'unknown')
  edit_info(unknown, lambda info: info.update(codebase_version='v1.6'))
  with pytest.raises(Rejected) as e:
    lf.list_episodes(unknown)
  assert e.value.reason == rejection.UNKNOWN_CODEBASE_VERSION and not e.value.counts_as_episode

  dtype = copy_of(layout, tmp_path, 'dtype')
  edit_info(dtype, lambda info: info['features']['action'].update(dtype='float64'))
  shape = copy_of(layout, tmp_path, 'shape')
  edit_info(shape, lambda info: info['features'][STATE].update(shape=[6]))
  for root, words in ((dtype, 'holds float values; meta/info.json says dtype float64'),
                      (shape, 'holds vectors of length [5]; meta/info.json says shape [6]')):
    with pytest.raises(Rejected) as e:
      lf.read_episode(lf.list_episodes(root)[0])
    assert e.value.reason == rejection.FEATURE_MISMATCH and words in e.value.detail


@pytest.mark.parametrize('layout', LAYOUTS)
def test_duplicate_frames_and_early_done_are_rejected(layout, tmp_path):
  duplicate, early = copy_of(layout, tmp_path, 'dup'), copy_of(layout, tmp_path, 'early')
  path = data_files(duplicate)[0]
  table = pq.read_table(path)
  rewrite(path, pa.concat_tables([table, table.slice(2, 1)]))  # Episode 0's frame 2 twice.
  with pytest.raises(Rejected) as e:
    lf.read_episode(lf.list_episodes(duplicate)[0])
  assert e.value.reason == rejection.DUPLICATE_FRAME and 'frame_index 2 appears 2 times' in str(
      e.value)

  path = data_files(early)[0]
  table = pq.read_table(path)
  done = np.array(table['next.done'].to_pylist())
  done[3] = True  # Episode 0 goes on after frame 3.
  rewrite(path, table.set_column(table.schema.get_field_index('next.done'), 'next.done',
                                 pa.array(done)))
  with pytest.raises(Rejected) as e:
    lf.read_episode(lf.list_episodes(early)[0])
  assert e.value.reason == rejection.INVALID_RECORD and 'frame 3' in e.value.detail


def test_unreadable_parquet_and_unused_cameras(tmp_path):
  damaged = copy_of('v3.0', tmp_path, 'damaged')
  path = data_files(damaged)[0]
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(Rejected) as e:
    lf.read_episode(lf.list_episodes(damaged)[1])
  assert e.value.reason == rejection.UNREADABLE_FILE and 'file-000.parquet' in e.value.detail

  # A camera that is not read (--lerobot_image_columns=): its missing video is reported, the
  # episodes are still read. (Cameras that are read: tests/pipeline/test_lerobot_cameras.py.)
  camera = copy_of('v2.1', tmp_path, 'camera')
  def add_camera(info):
    info['features']['observation.images.front'] = {'dtype': 'video', 'shape': [64, 64, 3]}
    info['video_path'] = ('videos/chunk-{episode_chunk:03d}/{video_key}/'
                          'episode_{episode_index:06d}.mp4')
  edit_info(camera, add_camera)
  refs = lf.list_episodes(camera)
  no_cameras = lf.LeRobotColumns(images=())
  missing = lf.missing_video_files(refs, no_cameras)
  assert [r.reason for r in missing] == [rejection.MISSING_VIDEO_FILE] * 3
  assert not any(r.counts_as_episode for r in missing)
  assert missing[0].source == 'camera/videos/chunk-000/observation.images.front/episode_000000.mp4'
  assert lf.read_episode(refs[0], no_cameras).num_transitions == 7
  with pytest.raises(Rejected) as e:  # ... unless it is named as an observation.
    lf.read_episode(refs[0], lf.LeRobotColumns(observations=('observation.images.front',)))
  assert e.value.reason == rejection.UNSUPPORTED_FEATURE


@pytest.mark.parametrize('layout', LAYOUTS)
def test_inputs_and_fingerprint_cover_the_parquet_files(layout, tmp_path):
  root = copy_of(layout, tmp_path, 'fp')
  files = round_job.expand_inputs([root])
  assert [(f.kind, f.source) for f in files] == [('lerobot', 'fp')]
  paths = round_job.fingerprint_paths(files)
  assert set(data_files(root)) <= set(paths) and os.path.join(root, 'meta', 'info.json') in paths
  before = rounds.input_fingerprint(paths, {})
  path = data_files(root)[-1]
  table = pq.read_table(path)
  action = np.array(table['action'].to_pylist(), np.float32)
  action[-1, 0] += 1.0
  rewrite(path, table.set_column(table.schema.get_field_index('action'), 'action',
                                 pa.array(list(action), table.schema.field('action').type)))
  assert rounds.input_fingerprint(round_job.fingerprint_paths(files), {}) != before
  with pytest.raises(ValueError, match='root folder'):
    round_job.expand_inputs([path])


def test_variable_length_list_columns_are_read_like_fixed_ones(tmp_path):
  """Older writers (datasets < 3) stored vectors as list<float>, not fixed_size_list."""
  root = copy_of('v2.1', tmp_path, 'lists')
  path = data_files(root)[0]
  table = pq.read_table(path)
  index = table.schema.get_field_index('action')
  as_list = table['action'].cast(pa.list_(pa.float32()))
  rewrite(path, table.set_column(index, 'action', as_list))
  ref = lf.list_episodes(root)[0]
  np.testing.assert_array_equal(lf.read_episode(ref).actions,
                                np.array(table['action'].to_pylist()[:-1], np.float32))
  ragged = as_list.to_pylist()
  ragged[4] = ragged[4][:2]
  rewrite(path, table.set_column(index, 'action', pa.array(ragged, pa.list_(pa.float32()))))
  with pytest.raises(Rejected) as e:
    lf.read_episode(ref)
  assert e.value.reason == rejection.FEATURE_MISMATCH and 'length [2, 3]' in e.value.detail


@pytest.mark.parametrize('done_flag, terminated', [(None, 1), ('', 0)])
def test_the_command_line_sets_the_done_column(tmp_path, done_flag, terminated):
  """`pipeline.main --lerobot_done_column=` reads every episode as truncated (HIL-SERL's
  recorder also sets next.done on time-outs); by default the fixture's one done episode ends in
  a terminal state."""
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  command = [sys.executable, '-m', 'pipeline.main', f'--input={fixture("v3.0")}',
             f'--output_dir={tmp_path}', '--dataset=hil', '--round=0', '--engine=plain']
  if done_flag is not None:
    command.append(f'--lerobot_done_column={done_flag}')
  out = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert f'terminated episodes: {terminated}' in out.stdout + out.stderr
