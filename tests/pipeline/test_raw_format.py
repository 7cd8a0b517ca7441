"""Raw log format v1: parsing, step-stream assembly, and each class of bad input."""

import gzip
import io
import json

import numpy as np
import pytest

from pipeline import raw_format
from pipeline import raw_writer
from pipeline import rejection
from pipeline.rejection import Rejected
from pipeline.validate import validate_episode


def records(episode_id='e1', T=3, flags=(False, True, False), final_flag=False, **kw):
  obs = np.arange((T + 1) * 2, dtype=np.float32).reshape(T + 1, 2)
  act = np.full((T, 1), 0.5, np.float32)
  return raw_writer.step_records(obs, act, {'episode_id': episode_id, 'robot': 'r1'},
                                 interventions=list(flags) + [final_flag], **kw)


def parsed(recs, source='a.jsonl'):
  return [raw_format.parse_step_line(json.dumps(r), source, i + 1) for i, r in enumerate(recs)]


def assert_rejected(reason, fn, *args):
  with pytest.raises(Rejected) as info:
    fn(*args)
  assert info.value.reason == reason, str(info.value)
  return info.value


# ------------------------------------------------------------------------ step streams


def test_assembles_shuffled_records_from_several_files():
  recs = parsed(records()[::-1], 'b.jsonl') + parsed(records()[:1], 'a.jsonl')  # + exact dup.
  ep = raw_format.assemble_episode('e1', recs)
  np.testing.assert_array_equal(ep.observations[:, 0], [0, 2, 4, 6])
  np.testing.assert_array_equal(ep.interventions, [False, True, False, False])
  assert ep.actions.shape == (3, 1)
  assert ep.metadata == {'episode_id': 'e1', 'robot': 'r1'}
  assert ep.source == 'a.jsonl,b.jsonl'
  assert ep.policy_actions is None and not ep.terminated


def test_final_record_intervention_flag_is_kept():
  ep = raw_format.assemble_episode('e1', parsed(records(final_flag=True)))
  np.testing.assert_array_equal(ep.interventions, [False, True, False, True])


def test_unparseable_line():
  r = assert_rejected(rejection.UNPARSEABLE_LINE, raw_format.parse_step_line, '{"episode_id": ',
                      'a.jsonl', 7)
  assert r.unit == rejection.LINE and 'line 7' in r.detail and r.lines == ('{"episode_id": ',)
  assert_rejected(rejection.UNPARSEABLE_LINE, raw_format.parse_step_line, '[1, 2]', 'a.jsonl', 1)
  assert_rejected(rejection.INVALID_RECORD, raw_format.parse_step_line, '{"step": 0}', 'a', 1)
  assert raw_format.parse_step_line('  \n', 'a.jsonl', 3) is None


def test_truncated_gzip_yields_lines_before_the_damage_then_rejects_the_file():
  text = ''.join(json.dumps(r) + '\n' for r in records(T=50, flags=[False] * 50)).encode()
  data = gzip.compress(text)[:-200]
  seen = []
  with pytest.raises(Rejected) as info:
    for _, line in raw_format.iter_lines(data, '/x/steps.jsonl.gz'):
      seen.append(line)
  assert info.value.reason == rejection.TRUNCATED_GZIP
  assert info.value.source == 'steps.jsonl.gz' and info.value.source_path == '/x/steps.jsonl.gz'
  assert 0 < len(seen) < 51


def test_step_gap():
  recs = parsed(records())
  r = assert_rejected(rejection.STEP_GAP, raw_format.assemble_episode, 'e1',
                      recs[:1] + recs[2:])
  assert 'steps 1 are missing' in r.detail
  assert len(r.lines) == 3  # Every record of the episode is kept with the rejection.


def test_conflicting_duplicate_step():
  recs = parsed(records())
  other = dict(recs[1].fields, action=[0.9])
  dup = raw_format.StepRecord('e1', 1, other, 'c.jsonl', 4)
  assert_rejected(rejection.CONFLICTING_DUPLICATE_STEP, raw_format.assemble_episode, 'e1',
                  recs + [dup])


def test_episode_with_no_final_record():
  recs = parsed(records())
  r = assert_rejected(rejection.NO_FINAL_RECORD, raw_format.assemble_episode, 'e1', recs[:-1])
  assert r.episode_id == 'e1' and r.counts_as_episode


def test_inconsistent_dimensions_in_a_step_stream():
  recs = records()
  recs[2]['observation'] = [1.0]  # Other steps have 2 numbers.
  assert_rejected(rejection.INCONSISTENT_DIMENSIONS, raw_format.assemble_episode, 'e1',
                  parsed(recs))


def test_partially_logged_policy_action_is_rejected():
  recs = records(policy_actions=np.zeros((3, 1)))
  del recs[1]['policy_action']
  assert_rejected(rejection.INCONSISTENT_DIMENSIONS, raw_format.assemble_episode, 'e1',
                  parsed(recs))


def test_action_on_the_final_record_is_rejected():
  recs = records()
  recs[-1]['action'] = [0.1]
  assert_rejected(rejection.INVALID_RECORD, raw_format.assemble_episode, 'e1', parsed(recs))


# ------------------------------------------------------------------------ npz episodes


def npz(**overrides):
  arrays = dict(observations=np.zeros((4, 2), np.float32), actions=np.zeros((3, 1), np.float32),
                interventions=np.array([False, True, False]), metadata=np.array('{"episode_id":'
                                                                                ' "n1"}'))
  arrays.update(overrides)
  arrays = {k: v for k, v in arrays.items() if v is not None}
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


def test_npz_roundtrip_with_writer():
  data = raw_writer.npz_bytes(np.ones((3, 2)), np.zeros((2, 1)), {'episode_id': 'n1', 'x': 1},
                              interventions=[False, True], terminated=True)
  ep = raw_format.parse_npz_episode(data, 'n1.npz')
  assert ep.episode_id == 'n1' and ep.terminated and ep.metadata['x'] == 1
  np.testing.assert_array_equal(ep.interventions, [False, True])


def test_pickled_object_array():
  data = npz(actions=np.array([{'a': 1}, None], dtype=object))
  assert_rejected(rejection.PICKLED_OBJECT_ARRAY, raw_format.parse_npz_episode, data, 'p.npz')


def test_unreadable_file():
  assert_rejected(rejection.UNREADABLE_FILE, raw_format.parse_npz_episode, b'not a zip', 'x.npz')
  assert_rejected(rejection.UNREADABLE_FILE, raw_format.parse_npz_episode, npz()[:100], 'x.npz')


def test_missing_metadata_and_episode_id():
  assert_rejected(rejection.MISSING_FIELD, raw_format.parse_npz_episode, npz(metadata=None), 'a')
  assert_rejected(rejection.INVALID_METADATA, raw_format.parse_npz_episode,
                  npz(metadata=np.array('{"id": 3}')), 'a')


def validate(data, dims=None):
  validate_episode(raw_format.parse_npz_episode(data, 'v.npz'), dims)


def test_nan_and_inf_are_rejected():
  obs = np.zeros((4, 2), np.float32)
  obs[2, 1] = np.nan
  r = assert_rejected(rejection.NON_FINITE, validate, npz(observations=obs))
  assert 'first at step 2' in r.detail
  act = np.zeros((3, 1), np.float32)
  act[0] = np.inf
  assert_rejected(rejection.NON_FINITE, validate, npz(actions=act))


def test_missing_final_observation():
  r = assert_rejected(rejection.MISSING_FINAL_OBSERVATION, validate,
                      npz(observations=np.zeros((3, 2), np.float32)))
  assert 'T+1' in r.detail


def test_inconsistent_dimensions_in_npz():
  assert_rejected(rejection.INCONSISTENT_DIMENSIONS, validate,
                  npz(observations=np.zeros((6, 2), np.float32)))
  assert_rejected(rejection.INCONSISTENT_DIMENSIONS, validate,
                  npz(policy_actions=np.zeros((3, 2), np.float32)))
  assert_rejected(rejection.INCONSISTENT_DIMENSIONS, validate,
                  npz(interventions=np.zeros(7, bool)))


def test_dimension_mismatch_with_the_dataset():
  validate(npz(), dims=(2, 1))
  assert_rejected(rejection.DIMENSION_MISMATCH, validate, npz(), (45, 24))


def test_empty_episode():
  assert_rejected(rejection.EMPTY_EPISODE, validate,
                  npz(observations=np.zeros((1, 2), np.float32),
                      actions=np.zeros((0, 1), np.float32), interventions=None))
