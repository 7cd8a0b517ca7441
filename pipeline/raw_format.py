"""Readers for raw log formats v1 and v2 (specified in WORKSPACE.md): `*.npz` episodes and
`*.jsonl[.gz]` step streams. They turn bytes into `RawEpisode`s and raise `Rejected` for anything
malformed. Version 2 adds dict observations (named vector and image fields); a v1 file reads
exactly as before.

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
from typing import Iterable, Iterator, Optional, Union

import numpy as np

from pipeline import rejection
from pipeline.rejection import Rejected

FORMAT_VERSION = 2  # the newest version the readers understand
# Rounds' input fingerprints record 1: v2 readers read every v1 file exactly as v1 readers did,
# so a committed round re-run on the same input stays 'unchanged'.
FINGERPRINT_FORMAT_VERSION = 1
OBSERVATION_FIELD_PREFIX = 'observations/'  # v2 npz: one array per dict observation field
NPZ_SUFFIXES = ('.npz',)
STEP_STREAM_SUFFIXES = ('.jsonl', '.jsonl.gz')


@dataclasses.dataclass
class RawEpisode:
  """One logged episode before relabeling.

  observations: [T+1, D] float32, the final observation included (v1); or (v2) a dict of named
    fields, each [T+1, ...]: float32 vectors [T+1, D] and uint8 images [T+1, H, W, C]
    (`schema.is_image_shape` decides which is which; `validate` checks them).
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
  observations: Union[np.ndarray, dict]
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

  fields = {key[len(OBSERVATION_FIELD_PREFIX):]: value for key, value in arrays.items()
            if key.startswith(OBSERVATION_FIELD_PREFIX)}
  if fields and 'observations' in arrays:
    raise reject(rejection.MIXED_OBSERVATION_FORMATS,
                 'holds both `observations` (format v1) and `observations/<name>` arrays '
                 f'(format v2: {sorted(fields)}); write one or the other')
  for key in ('actions', 'metadata') + (() if fields else ('observations',)):
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

  if fields:
    observations = {name: _observation_field(name, numeric(OBSERVATION_FIELD_PREFIX + name),
                                             source, metadata['episode_id'])
                    for name in sorted(fields)}
  else:
    observations = numeric('observations').astype(np.float32, copy=False)
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
      observations=observations,
      actions=actions.astype(np.float32, copy=False),
      interventions=None if interventions is None else interventions.astype(bool),
      policy_actions=None if policy_actions is None else policy_actions.astype(np.float32),
      terminated=bool(terminated) if terminated is not None else False,
      metadata=metadata,
      source=source,
      expert_actions=None if expert_actions is None else expert_actions.astype(np.float32))


def _observation_field(name: str, value: np.ndarray, source: str, episode_id: str) -> np.ndarray:
  """One v2 observation field as read: uint8 arrays keep their dtype (images; a uint8 vector is
  cast like any other vector), everything else becomes float32. `validate` checks the shapes."""
  if not _valid_field_name(name):
    raise Rejected(rejection.INVALID_RECORD,
                   f'observation field name {name!r} must be a letter or _ followed by letters, '
                   'digits or _', source, unit=rejection.FILE, episode_id=episode_id)
  if value.dtype == np.uint8 and value.ndim != 2:
    return value
  return value.astype(np.float32, copy=False)


def _valid_field_name(name: str) -> bool:
  return name.isidentifier() and name.isascii()


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


def _vector(records: list[StepRecord], key: str, episode_id: str, source: str,
            field: Optional[str] = None) -> np.ndarray:
  """Stacks `key` (or its `field`, for a dict observation) of every record into a float32
  matrix; rejects ragged or non-numeric data."""
  values = [r.fields[key] if field is None else r.fields[key][field] for r in records]
  if field is not None:
    key = f'{key}/{field}'
  try:
    matrix = np.asarray(values, dtype=np.float32)
  except (ValueError, TypeError) as e:
    lengths = sorted({len(v) if isinstance(v, list) else -1 for v in values})
    raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                   f'`{key}` is not a numeric vector of one length on every step '
                   f'(lengths seen: {lengths}; {e})', source, episode_id=episode_id,
                   lines=tuple(r.to_json() for r in records))
  if matrix.ndim != 2:
    raise Rejected(rejection.INCONSISTENT_DIMENSIONS,
                   f'`{key}` must be a flat list of numbers, got shape {matrix.shape[1:]}',
                   source, episode_id=episode_id, lines=tuple(r.to_json() for r in records))
  return matrix


def _observations(records: list[StepRecord], episode_id: str,
                  source: str) -> Union[np.ndarray, dict]:
  """The `observation`s of an episode's records: a list of numbers on every step (v1), or a JSON
  object of named vectors on every step (v2). Images are not accepted in step streams: a frame
  as JSON numbers is ~10x its PNG, and per step base64 PNGs would make the logger an encoder;
  cameras are logged as npz episodes (`observations/<name>` arrays)."""
  dicts = [isinstance(r.fields['observation'], dict) for r in records]
  if not any(dicts):
    return _vector(records, 'observation', episode_id, source)

  def reject(reason, detail):
    return Rejected(reason, detail, source, episode_id=episode_id,
                    lines=tuple(r.to_json() for r in records))

  if not all(dicts):
    raise reject(rejection.MIXED_OBSERVATION_FORMATS,
                 f'`observation` is a JSON object on {sum(dicts)} of {len(records)} steps and a '
                 'list on the others; log one form on every step')
  names = sorted(records[0].fields['observation'])
  for r in records:
    if sorted(r.fields['observation']) != names:
      raise reject(rejection.MISSING_FIELD,
                   f'step {r.step}: observation fields {sorted(r.fields["observation"])} differ '
                   f'from step {records[0].step}\'s {names}; every step must log every field')
  fields = {}
  for name in names:
    if not _valid_field_name(name):
      raise reject(rejection.INVALID_RECORD, f'observation field name {name!r} must be a letter '
                   'or _ followed by letters, digits or _')
    value = records[0].fields['observation'][name]
    if isinstance(value, list) and value and isinstance(value[0], list):
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'observation field `{name}` is nested lists (an image?); step streams hold '
                   'vector fields only: log cameras in npz episodes (raw format v2)')
    fields[name] = _vector(records, 'observation', episode_id, source, field=name)
  return fields


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

  observations = _observations(records, episode_id, source)
  metadata = records[0].fields.get('metadata') or {}
  if not isinstance(metadata, dict):
    raise reject(rejection.INVALID_METADATA, '`metadata` on step 0 must be a JSON object')
  metadata = dict(metadata, episode_id=episode_id)
  has_flags = any('intervention' in r.fields for r in records)
  return RawEpisode(
      observations=observations,
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

