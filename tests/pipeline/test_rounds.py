"""Rounds are appended, never rewritten: idempotent, atomic, refusing silent replacement.

These run the job's stages in-process (engine 'plain'); test_beam_job.py runs the same job on
Beam runners.
"""

import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pipeline import raw_writer
from pipeline import round_job
from pipeline import rounds
from pipeline import schema as sc
from pipeline import stages


def run(inputs, out, round_index, **kw):
  return round_job.run_round([os.path.join(inputs, '*')], out, 'ds', round_index,
                             runner='plain', **kw)


def snapshot(directory):
  """{relative path: (sha256, mtime_ns)} of every file under `directory`."""
  result = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        result[os.path.relpath(path, directory)] = (hashlib.sha256(f.read()).hexdigest(),
                                                     os.stat(path).st_mtime_ns)
  return result


def read_split(version_dir, split):
  builder = tfds.builder_from_directory(version_dir)
  return list(tfds.as_numpy(builder.as_dataset(split=split)))


def test_append_touches_no_file_of_earlier_rounds(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  first = run(raw_logs('r0', 0), out, 0)
  assert first.status == 'new'
  before = {k: v for k, v in snapshot(first.version_dir).items()
            if 'round_0' in k}
  run(raw_logs('r1', 1), out, 1)
  after = snapshot(first.version_dir)
  assert {k: after[k] for k in before} == before  # Same bytes, never reopened.
  assert set(rounds.committed_rounds(rounds.DatasetLayout(out, 'ds'))) == {0, 1}
  both = read_split(first.version_dir, 'round_0+round_1')
  assert len(both) == 14
  assert {int(e[sc.EPISODE_METADATA][sc.ROUND]) for e in both} == {0, 1}


def test_rerun_on_same_input_changes_nothing(raw_logs, tmp_path):
  out, inputs = str(tmp_path / 'out'), raw_logs('r0', 0)
  first = run(inputs, out, 0)
  before = snapshot(first.version_dir)
  again = run(inputs, out, 0)
  assert again.status == 'unchanged'
  assert snapshot(first.version_dir) == before
  assert len(read_split(first.version_dir, 'round_0')) == 7


def test_rerun_on_different_input_is_refused_unless_overwriting(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  run(raw_logs('r0', 0), out, 0)
  other = raw_logs('other', 5, num_npz=2, num_streamed=0)
  with pytest.raises(rounds.RoundConflict, match='--overwrite'):
    run(other, out, 0)
  replaced = run(other, out, 0, overwrite=True)
  assert replaced.status == 'overwrite'
  episodes = read_split(replaced.version_dir, 'round_0')
  assert sorted(e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode() for e in episodes) == [
      'n5_0', 'n5_1']
  assert len([p for p in os.listdir(replaced.version_dir) if 'round_0.tfrecord' in p]) == 1


def test_crash_before_commit_leaves_no_half_round_and_rerun_recovers(raw_logs, tmp_path,
                                                                     monkeypatch):
  out = str(tmp_path / 'out')
  run(raw_logs('r0', 0), out, 0)
  inputs = raw_logs('r1', 1)
  real = rounds.write_metadata

  def crash(*args):
    raise KeyboardInterrupt('killed while committing')

  monkeypatch.setattr(rounds, 'write_metadata', crash)
  with pytest.raises(KeyboardInterrupt):
    run(inputs, out, 1)
  monkeypatch.setattr(rounds, 'write_metadata', real)
  version_dir = rounds.DatasetLayout(out, 'ds').version_dir
  # Shards of round 1 are on disk, but readers see only round 0, complete.
  assert any('round_1.tfrecord' in p for p in os.listdir(version_dir))
  builder = tfds.builder_from_directory(version_dir)
  assert list(builder.info.splits) == ['round_0']
  assert len(read_split(version_dir, 'round_0')) == 7
  assert run(inputs, out, 1).status == 'new'
  assert len(read_split(version_dir, 'round_1')) == 7


def test_bad_input_is_dead_lettered_and_the_rest_is_written(raw_logs, tmp_path):
  inputs = raw_logs('r0', 0)
  with open(os.path.join(inputs, 'broken.npz'), 'wb') as f:
    f.write(b'\x00' * 64)
  obs = np.zeros((3, 5), np.float32)
  obs[1, 1] = np.nan
  from pipeline import raw_writer
  raw_writer.write_npz_episode(os.path.join(inputs, 'nan.npz'), obs, np.zeros((2, 3)),
                               {'episode_id': 'nan'})
  with open(os.path.join(inputs, 'fleet0_a.jsonl'), 'a') as f:
    f.write('{"episode_id": "s0_0", "step": \n')  # Unparseable line.
  raw_writer.write_step_stream(os.path.join(inputs, 'late.jsonl'), [
      {'episode_id': 'unfinished', 'step': 0, 'observation': [0] * 5, 'action': [0] * 3}])
  result = run(inputs, str(tmp_path / 'out'), 0)
  report = result.report
  assert report['episodes_written'] == 7
  assert report['rejected_by_reason'] == {
      'no_final_record': 1, 'non_finite_value': 1, 'unparseable_line': 1, 'unreadable_file': 1}
  # Input episodes = written + dead-lettered: 7 good + broken + nan + unfinished.
  assert report['input_episodes'] == 10 == report['episodes_written'] + report[
      'episodes_rejected']
  rejected_dir = rounds.DatasetLayout(str(tmp_path / 'out'), 'ds').rejected_dir(0)
  records = [json.load(open(os.path.join(rejected_dir, p)))
             for p in os.listdir(rejected_dir) if p.endswith('.json')]
  by_reason = {r['reason']: r for r in records}
  assert by_reason['unparseable_line']['lines'] == ['{"episode_id": "s0_0", "step": ']
  assert by_reason['no_final_record']['episode_id'] == 'unfinished'
  copy = os.path.join(rejected_dir, by_reason['unreadable_file']['copy'])
  assert open(copy, 'rb').read() == b'\x00' * 64  # The rejected file itself is kept.
  with open(rounds.DatasetLayout(str(tmp_path / 'out'), 'ds').summary_path(0)) as f:
    assert 'unreadable_file' in f.read()


def test_later_round_must_match_dataset_dimensions(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  run(raw_logs('r0', 0), out, 0)
  from pipeline import raw_writer
  d = str(tmp_path / 'wide')
  os.makedirs(d)
  raw_writer.write_npz_episode(os.path.join(d, 'w.npz'), np.zeros((3, 9)), np.zeros((2, 3)),
                               {'episode_id': 'w'})
  raw_writer.write_npz_episode(os.path.join(d, 'ok.npz'), np.zeros((3, 5)), np.zeros((2, 3)),
                               {'episode_id': 'ok'})
  report = run(d, out, 1).report
  assert report['rejected_by_reason'] == {'dimension_mismatch_with_dataset': 1}
  assert report['episodes_written'] == 1


def test_round_of_only_rejected_input_is_committed_empty(tmp_path):
  d = tmp_path / 'bad'
  d.mkdir()
  (d / 'x.npz').write_bytes(b'PK\x03\x04 truncated')
  out = str(tmp_path / 'out')
  os.makedirs(out)
  from pipeline import raw_writer
  raw_writer.write_npz_episode(str(tmp_path / 'good.npz'), np.zeros((3, 5)), np.zeros((2, 3)),
                               {'episode_id': 'g'})
  round_job.run_round([str(tmp_path / 'good.npz')], out, 'ds', 0, runner='plain')
  result = run(str(d), out, 1)
  assert result.report['episodes_written'] == 0 and result.report['episodes_rejected'] == 1
  builder = tfds.builder_from_directory(result.version_dir)
  assert builder.info.splits['round_1'].num_examples == 0
  assert len(read_split(result.version_dir, 'round_0+round_1')) == 1
  assert run(str(d), out, 1).status == 'unchanged'


def _steps(episode):
  """The nested steps dataset of a read episode as {field: [N, ...] array}."""
  steps = list(episode[sc.STEPS])
  return {k: np.stack([step[k] for step in steps]) for k in steps[0]}


def _labelled_round(directory, seed, T=12):
  """Two DAgger-style episodes (the policy acted, the expert labelled every step): one npz, one
  step stream; returns {episode_id: labels}."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  labels = {}
  for i, kind in enumerate(('npz', 'jsonl')):
    obs = rng.normal(size=(T + 1, 5)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(T, 3)).astype(np.float32)
    expert = rng.uniform(-1, 1, size=(T, 3)).astype(np.float32)
    episode_id = f'dagger{seed}_{i}'
    labels[episode_id] = expert
    if kind == 'npz':
      raw_writer.write_npz_episode(os.path.join(directory, f'{episode_id}.npz'), obs, act,
                                   {'episode_id': episode_id}, interventions=np.zeros(T, bool),
                                   policy_actions=act, expert_actions=expert)
    else:
      raw_writer.write_step_stream(
          os.path.join(directory, f'{episode_id}.jsonl'),
          raw_writer.step_records(obs, act, {'episode_id': episode_id},
                                  interventions=np.zeros(T, bool), expert_actions=expert))
  return labels


def test_expert_labels_are_stored_bit_exact_and_absent_labels_are_nan(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  run(raw_logs('r0', 0, num_streamed=0), out, 0)
  labels = _labelled_round(str(tmp_path / 'r1'), 1)
  result = run(str(tmp_path / 'r1'), out, 1)
  assert result.report['episodes_written'] == 2
  episodes = {e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode(): e
              for e in read_split(result.version_dir, 'round_1')}
  for episode_id, expected in labels.items():
    steps = _steps(episodes[episode_id])
    assert episodes[episode_id][sc.EPISODE_METADATA][sc.HAS_EXPERT_ACTION]
    np.testing.assert_array_equal(steps[sc.EXPERT_ACTION][:-1], expected)
    assert np.isnan(steps[sc.EXPERT_ACTION][-1]).all()  # the final step is not a transition
    assert (steps[sc.REWARD] == 0).all()  # no takeover, no -1
  for episode in read_split(result.version_dir, 'round_0'):
    assert not episode[sc.EPISODE_METADATA][sc.HAS_EXPERT_ACTION]
    assert np.isnan(_steps(episode)[sc.EXPERT_ACTION]).all()


def test_labels_logged_on_some_steps_or_not_finite_are_dead_lettered(tmp_path):
  directory, out = str(tmp_path / 'bad'), str(tmp_path / 'out')
  os.makedirs(directory)
  rng = np.random.default_rng(0)
  obs = rng.normal(size=(5, 5)).astype(np.float32)
  act = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)
  expert = act.copy()
  expert[2, 1] = np.nan
  raw_writer.write_npz_episode(os.path.join(directory, 'nan.npz'), obs, act,
                               {'episode_id': 'nan'}, expert_actions=expert)
  records = raw_writer.step_records(obs, act, {'episode_id': 'partial'}, expert_actions=act)
  del records[1]['expert_action']
  raw_writer.write_step_stream(os.path.join(directory, 'partial.jsonl'), records)
  result = run(directory, out, 0)
  assert result.report['episodes_written'] == 0
  reasons = {}
  rejected_dir = rounds.DatasetLayout(out, 'ds').rejected_dir(0)
  for name in os.listdir(rejected_dir):
    if name.endswith('.json'):
      with open(os.path.join(rejected_dir, name)) as f:
        letter = json.load(f)
      reasons[letter['episode_id']] = (letter['reason'], letter['detail'])
  assert reasons['nan'][0] == 'non_finite_value' and 'expert_actions' in reasons['nan'][1]
  assert reasons['partial'][0] == 'inconsistent_dimensions'
  assert '`expert_action` is logged on 3 of 4 steps' in reasons['partial'][1]


def test_a_dataset_created_before_expert_labels_keeps_its_schema(raw_logs, tmp_path):
  """Round 0 written with the schema that had no `expert_action` (what earlier versions of the
  pipeline wrote); appending keeps that schema, so earlier rounds stay readable, and labelled
  episodes are dead-lettered with the reason rather than dropped."""
  out = str(tmp_path / 'out')
  layout = rounds.DatasetLayout(out, 'ds')
  files = round_job.expand_inputs([os.path.join(raw_logs('r0', 0, num_streamed=0), '*')])
  job = stages.JobSpec(round_index=0, dims=(5, 3), takeover='keep',
                       staging_dir=layout.new_staging_dir(0), expert_action=False)
  stages.run_plain(files, job)
  rounds.commit_round(layout, 0, job.staging_dir, stages.read_receipts(job.staging_dir),
                      job.dims, {'round': 0, 'fingerprint': 'legacy', 'report': {}}, '',
                      expert_action=False)
  assert rounds.dataset_schema(layout) == ((5, 3), False)

  run(raw_logs('r1', 1), out, 1)
  _labelled_round(str(tmp_path / 'r2'), 2)
  result = run(str(tmp_path / 'r2'), out, 2)
  assert result.report['episodes_written'] == 0
  assert result.report['rejected_by_reason'] == {'expert_action_not_in_dataset': 2}
  assert rounds.dataset_schema(layout) == ((5, 3), False)
  episodes = read_split(layout.version_dir, 'round_0+round_1')
  assert len(episodes) == 4 + 7
  assert sc.EXPERT_ACTION not in _steps(episodes[0])


def test_input_patterns_follow_beam_empty_match_treatment(raw_logs, tmp_path):
  """A wildcard that matches nothing is skipped and reported; a literal path that does not exist
  is an error; a round with no input file at all is an error."""
  inputs, out = raw_logs('r0', 0, num_streamed=0), str(tmp_path / 'out')  # npz files only
  result = round_job.run_round([os.path.join(inputs, '*.npz'), os.path.join(inputs, '*.jsonl')],
                               out, 'ds', 0, runner='plain')
  assert result.report['episodes_written'] == 4
  assert result.report['input_patterns_matching_nothing'] == [os.path.join(inputs, '*.jsonl')]
  assert 'matched no file (skipped): ' + os.path.join(inputs, '*.jsonl') in result.summary
  with pytest.raises(FileNotFoundError, match='does not exist'):
    round_job.run_round([os.path.join(inputs, 'ep0_0.npz'), os.path.join(inputs, 'gone.npz')],
                        out, 'ds', 1, runner='plain')
  with pytest.raises(FileNotFoundError, match='matched no raw log files'):
    round_job.run_round([os.path.join(inputs, '*.jsonl.gz')], out, 'ds', 1, runner='plain')
  assert sorted(rounds.committed_rounds(rounds.DatasetLayout(out, 'ds'))) == [0]
