"""Readers for raw log format v1 (specified in WORKSPACE.md): `*.npz` episodes and `*.jsonl[.gz]`
step streams. They turn bytes into `RawEpisode`s and raise `Rejected` for anything malformed.

Pure Python + numpy: no Beam, no TensorFlow. File access goes through `tf.io.gfile` only when the
path is not local, so the readers also work on `gs://` inputs.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import zlib
from typing import Iterable, Iterator, Optional

import numpy as np

from pipeline import rejection
from pipeline.rejection import Rejected

FORMAT_VERSION = 1
NPZ_SUFFIXES = ('.npz',)
STEP_STREAM_SUFFIXES = ('.jsonl', '.jsonl.gz')


@dataclasses.dataclass
class RawEpisode:
  """One logged episode before relabeling.

  observations: [T+1, D] float32, the final observation included.
  actions: [T, A] float32, the executed actions.
  interventions: [T] or [T+1] bool, True where the human was in control at step t; a (T+1)-th
    entry flags a takeover at the final observation (the operator ended the episode).
    None for prior data without intervention flags (demonstrations).
  policy_actions: [T, A] float32 or None, what the policy proposed.
  expert_actions: [T, A] float32 or None, the expert's label at each step: the action the expert
    would have taken in that state (DAgger; the executed action is still `actions`).
  terminated: the final observation is a true terminal state (else the episode was truncated).
  metadata: the logged JSON object; always has a non-empty string `episode_id`.
  source: path-free name of the input file(s).
  """
  observations: np.ndarray
  actions: np.ndarray
  interventions: Optional[np.ndarray]
  policy_actions: Optional[np.ndarray]
  terminated: bool
  metadata: dict
  source: str
  expert_actions: Optional[np.ndarray] = None

  @property
  def episode_id(self) -> str:
    return self.metadata['episode_id']

  @property
  def num_transitions(self) -> int:
    return int(self.actions.shape[0])


@dataclasses.dataclass(frozen=True)
class StepRecord:
  """One parsed line of a step stream, keyed downstream by `episode_id`."""
  episode_id: str
  step: int
  fields: dict  # the parsed JSON object
  source: str
  line_number: int

  def to_json(self) -> str:
    return json.dumps(self.fields, sort_keys=True)


def source_name(path: str) -> str:
  """Path-free reference to an input file: its base name."""
  return os.path.basename(path.rstrip('/'))


def kind_of(path: str) -> str:
  """'npz' or 'steps' by file name; raises ValueError for anything else."""
  if path.endswith(NPZ_SUFFIXES):
    return 'npz'
  if path.endswith(STEP_STREAM_SUFFIXES):
    return 'steps'
  raise ValueError(f'{path}: not a raw log file (expected one of '
                   f'{NPZ_SUFFIXES + STEP_STREAM_SUFFIXES})')


def read_bytes(path: str) -> bytes:
  if '://' in path:
    import tensorflow as tf  # Only remote paths pay for the TF import.
    with tf.io.gfile.GFile(path, 'rb') as f:
      return f.read()
  with open(path, 'rb') as f:
    return f.read()


# ----------------------------------------------------------------------------- npz episodes


def _metadata_from_json(text: str, source: str) -> dict:
  try:
    metadata = json.loads(text)
  except json.JSONDecodeError as e:
    raise Rejected(rejection.INVALID_METADATA, f'`metadata` is not valid JSON: {e}', source,
                   unit=rejection.FILE)
  if not isinstance(metadata, dict):
    raise Rejected(rejection.INVALID_METADATA,
                   f'`metadata` must be a JSON object, got {type(metadata).__name__}', source,
                   unit=rejection.FILE)
  episode_id = metadata.get('episode_id')
  if not isinstance(episode_id, str) or not episode_id:
    raise Rejected(rejection.INVALID_METADATA,
                   '`metadata` has no non-empty string `episode_id`', source, unit=rejection.FILE)
  return metadata


def parse_npz_episode(data: bytes, source: str) -> RawEpisode:
  """Parses one `*.npz` episode file (never unpickles)."""
  def reject(reason, detail):
    return Rejected(reason, detail, source, unit=rejection.FILE)

  if not data.startswith(b'PK'):  # np.load would otherwise try to unpickle the bytes.
    raise reject(rejection.UNREADABLE_FILE,
                 f'not an .npz (zip) archive: starts with {data[:8]!r} ({len(data)} bytes)')
  try:
    archive = np.load(io.BytesIO(data), allow_pickle=False)
    arrays = {key: archive[key] for key in archive.files}
  except ValueError as e:
    if 'allow_pickle' in str(e) or 'Object arrays' in str(e):
      raise reject(rejection.PICKLED_OBJECT_ARRAY,
                   'holds a pickled object array; v1 files must hold plain numeric arrays '
                   f'({e})')
    raise reject(rejection.UNREADABLE_FILE, f'not a readable .npz archive: {e}')
  except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, zlib.error ...
    raise reject(rejection.UNREADABLE_FILE, f'not a readable .npz archive: {e!r}')

  for key in ('observations', 'actions', 'metadata'):
    if key not in arrays:
      raise reject(rejection.MISSING_FIELD, f'missing array `{key}` (has {sorted(arrays)})')
  metadata_array = arrays['metadata']
  if metadata_array.shape != () or metadata_array.dtype.kind not in 'US':
    raise reject(rejection.INVALID_METADATA,
                 f'`metadata` must be a 0-d string, got {metadata_array.dtype} '
                 f'{metadata_array.shape}')
  metadata = _metadata_from_json(str(metadata_array.item()), source)

  def numeric(key, kinds='fiub'):
    value = arrays.get(key)
    if value is not None and value.dtype.kind not in kinds:
      raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                     f'`{key}` has dtype {value.dtype}, expected numbers', source,
                     unit=rejection.FILE, episode_id=metadata['episode_id'])
    return value

  observations = numeric('observations')
  actions = numeric('actions')
  interventions = numeric('interventions', 'biu')
  policy_actions = numeric('policy_actions')
  expert_actions = numeric('expert_actions')
  terminated = numeric('terminated', 'biu')
  if terminated is not None and terminated.size != 1:
    raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                   f'`terminated` must be a scalar, got shape {terminated.shape}', source,
                   unit=rejection.FILE, episode_id=metadata['episode_id'])
  return RawEpisode(
      observations=observations.astype(np.float32, copy=False),
      actions=actions.astype(np.float32, copy=False),
      interventions=None if interventions is None else interventions.astype(bool),
      policy_actions=None if policy_actions is None else policy_actions.astype(np.float32),
      terminated=bool(terminated) if terminated is not None else False,
      metadata=metadata,
      source=source,
      expert_actions=None if expert_actions is None else expert_actions.astype(np.float32))


# ----------------------------------------------------------------------------- step streams


def iter_lines(data: bytes, path: str) -> Iterator[tuple[int, str]]:
  """Yields (1-based line number, text) of a `.jsonl` or `.jsonl.gz` file.

  A truncated or corrupt gzip stream yields the lines decoded before the damage and then raises
  `Rejected(TRUNCATED_GZIP)`; the caller decides what to do with the lines already seen.
  """
  source = source_name(path)
  if path.endswith('.gz'):
    stream = gzip.GzipFile(fileobj=io.BytesIO(data))
    text = io.TextIOWrapper(stream, encoding='utf-8', errors='replace')
  else:
    text = io.StringIO(data.decode('utf-8', errors='replace'))
  line_number = 0
  try:
    for line_number, line in enumerate(text, start=1):
      yield line_number, line
  except (EOFError, OSError, zlib.error) as e:
    raise Rejected(rejection.TRUNCATED_GZIP,
                   f'gzip stream is truncated or corrupt after line {line_number}: {e}', source,
                   unit=rejection.FILE, source_path=path, counts_as_episode=False)


def parse_step_line(line: str, source: str, line_number: int) -> Optional[StepRecord]:
  """Parses one step-stream line; None for a blank line."""
  if not line.strip():
    return None

  def reject(reason, detail, episode_id=None):
    return Rejected(reason, f'line {line_number}: {detail}', source, unit=rejection.LINE,
                    episode_id=episode_id, lines=(line.rstrip('\n'),), counts_as_episode=False)

  try:
    fields = json.loads(line)
  except json.JSONDecodeError as e:
    raise reject(rejection.UNPARSEABLE_LINE, f'not valid JSON ({e})')
  if not isinstance(fields, dict):
    raise reject(rejection.UNPARSEABLE_LINE,
                 f'expected a JSON object, got {type(fields).__name__}')
  episode_id = fields.get('episode_id')
  if not isinstance(episode_id, str) or not episode_id:
    raise reject(rejection.INVALID_RECORD, 'no non-empty string `episode_id`')
  step = fields.get('step')
  if not isinstance(step, int) or isinstance(step, bool) or step < 0:
    raise reject(rejection.INVALID_RECORD, f'`step` must be a non-negative integer, got {step!r}',
                 episode_id)
  return StepRecord(episode_id, step, fields, source, line_number)


def _vector(records: list[StepRecord], key: str, episode_id: str, source: str) -> np.ndarray:
  """Stacks `key` of every record into a float32 matrix; rejects ragged or non-numeric data."""
  try:
    matrix = np.asarray([r.fields[key] for r in records], dtype=np.float32)
  except (ValueError, TypeError) as e:
    lengths = sorted({len(r.fields[key]) if isinstance(r.fields[key], list) else -1
                      for r in records})
    raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                   f'`{key}` is not a numeric vector of one length on every step '
                   f'(lengths seen: {lengths}; {e})', source, episode_id=episode_id,
                   lines=tuple(r.to_json() for r in records))
  if matrix.ndim != 2:
    raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                   f'`{key}` must be a flat list of numbers, got shape {matrix.shape[1:]}',
                   source, episode_id=episode_id, lines=tuple(r.to_json() for r in records))
  return matrix


def assemble_episode(episode_id: str, records: Iterable[StepRecord]) -> RawEpisode:
  """Orders one episode's step records (from any files, in any order) into a RawEpisode.

  Exact duplicate records (a logger that re-sent a line) are dropped; duplicates that disagree,
  gaps in the step numbers and episodes without a final record are rejected with every record of
  the episode attached.
  """
  records = sorted(records, key=lambda r: (r.step, r.source, r.line_number))
  source = ','.join(sorted({r.source for r in records}))
  all_lines = tuple(r.to_json() for r in records)

  def reject(reason, detail):
    return Rejected(reason, detail, source, episode_id=episode_id, lines=all_lines)

  unique: list[StepRecord] = []
  for record in records:
    if unique and unique[-1].step == record.step:
      if unique[-1].fields != record.fields:
        raise reject(rejection.CONFLICTING_DUPLICATE_STEP,
                     f'step {record.step} is logged twice with different content '
                     f'({unique[-1].source}:{unique[-1].line_number} vs '
                     f'{record.source}:{record.line_number})')
      continue
    unique.append(record)
  records = unique

  missing = sorted(set(range(records[-1].step + 1)) - {r.step for r in records})
  if missing:
    shown = ', '.join(map(str, missing[:10])) + (' ...' if len(missing) > 10 else '')
    raise reject(rejection.STEP_GAP, f'steps {shown} are missing (have {len(records)} records '
                 f'up to step {records[-1].step})')
  last_flags = [r.step for r in records if r.fields.get('is_last') is True]
  if not last_flags:
    raise reject(rejection.NO_FINAL_RECORD,
                 f'no record with "is_last": true (last logged step {records[-1].step}); '
                 'the episode is incomplete')
  if last_flags != [records[-1].step]:
    raise reject(rejection.INVALID_RECORD,
                 f'"is_last" is set on step(s) {last_flags}, but only the final record '
                 f'(step {records[-1].step}) may carry it')
  transitions, final = records[:-1], records[-1]
  if not transitions:
    raise reject(rejection.EMPTY_EPISODE, 'the episode has a final record but no transitions')

  for record in transitions:
    if record.fields.get('action') is None:
      raise reject(rejection.MISSING_FIELD, f'step {record.step} has no `action` (only the '
                   'final record may omit it)')
  for record in records:
    if 'observation' not in record.fields:
      raise reject(rejection.MISSING_FIELD, f'step {record.step} has no `observation`')
    if not isinstance(record.fields.get('intervention', False), bool):
      raise reject(rejection.INVALID_RECORD, f'step {record.step}: `intervention` must be a '
                   f'boolean, got {record.fields["intervention"]!r}')
  if final.fields.get('action') is not None:
    raise reject(rejection.INVALID_RECORD,
                 'the final record carries an `action`; it must hold only the final observation')

  logged = {}
  for field in ('policy_action', 'expert_action'):
    with_field = [r for r in transitions if r.fields.get(field) is not None]
    if with_field and len(with_field) != len(transitions):
      raise reject(rejection.INCONSISTENT_DIMENSIONS,
                   f'`{field}` is logged on {len(with_field)} of {len(transitions)} steps; '
                   'log it on every step or on none')
    logged[field] = bool(with_field)

  metadata = records[0].fields.get('metadata') or {}
  if not isinstance(metadata, dict):
    raise reject(rejection.INVALID_METADATA, '`metadata` on step 0 must be a JSON object')
  metadata = dict(metadata, episode_id=episode_id)
  has_flags = any('intervention' in r.fields for r in records)
  return RawEpisode(
      observations=_vector(records, 'observation', episode_id, source),
      actions=_vector(transitions, 'action', episode_id, source),
      interventions=(np.array([bool(r.fields.get('intervention', False)) for r in records])
                     if has_flags else None),
      policy_actions=(_vector(transitions, 'policy_action', episode_id, source)
                      if logged['policy_action'] else None),
      terminated=bool(final.fields.get('terminated', False)),
      metadata=metadata,
      source=source,
      expert_actions=(_vector(transitions, 'expert_action', episode_id, source)
                      if logged['expert_action'] else None))

