"""Reader for LeRobot datasets (codebase v2.0, v2.1 and v3.0): frames -> `RawEpisode`s.

A LeRobot dataset root holds `meta/info.json` (codebase_version, fps, features with dtype and
shape, the data path template), the episode list (v2.x: `meta/episodes.jsonl`; v3.0: parquet
files under `meta/episodes/`) and one row per frame in parquet files under `data/` (v2.x: one
file per episode, `data/chunk-XXX/episode_XXXXXX.parquet`; v3.0: several episodes per file,
`data/chunk-XXX/file-XXX.parquet`). Frames belong to episodes by `episode_index` and are
ordered by `frame_index`. This module reads them with pyarrow and numpy alone: no lerobot, no
torch, no TensorFlow (except `tf.io.gfile` for non-local paths, as in `raw_format`); cameras
add PyAV (videos) and Pillow (images), `pipeline.lerobot_cameras`.

How frames become transitions (the one place that decides it). Frame t holds the observation
s_t, the action a_t executed in it, and `next.reward` / `next.done` of the step (s_t, a_t) ->
s_t+1 (LeRobot's recorders, HIL-SERL's included, write them so). There is no separate final
observation, so an episode of T frames gives T-1 transitions:

  observations   frames 0..T-1 of the observation columns, concatenated in the order given;
                 when cameras are read, a dict: that vector as `state` plus one uint8
                 [T, H, W, C] field per camera (`lerobot_cameras`: names, decoding, and video
                 frames matched to rows by timestamp)
  actions        frames 0..T-2 of `action`; the last frame's action is dropped: the state it
                 led to was never recorded
  interventions  frames 0..T-1 of the intervention column (1/True: the human is in control);
                 the last frame's flag is kept as the episode's (T+1)-th flag (`RawEpisode`): a
                 takeover on the last frame still gives the last policy transition its -1
  policy_actions frames 0..T-2 of the policy-action column, when the dataset has that column
  terminated     `next.done` of the last frame. LeRobot's recorders set `next.done` on the last
                 frame only (HIL-SERL writes `terminated or truncated`); True is read as a true
                 terminal at the last recorded observation (the transition into it gets discount
                 0), False or no done column as a truncation. A done flag on an earlier frame
                 contradicts the episode going on, and the episode is rejected.

`next.reward` is ignored (rewards come from the RLIF rule, `pipeline.relabel`), and so are
`index`, `task_index` and every feature that is not named in `LeRobotColumns` (`timestamp` is
read for video cameras only). Cameras that are not read are not decoded; a missing video file
of one is reported as a dead-letter record that does not reject the episode, while a missing
video of a camera that is read rejects each of its episodes.

Everything the reader cannot use raises `Rejected` with a reason from `pipeline.rejection` and a
detail that names the file, the episode index and the frame.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from typing import Iterable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import lerobot_cameras
from pipeline import raw_format
from pipeline import rejection
from pipeline import schema as sc
from pipeline.raw_format import RawEpisode
from pipeline.rejection import Rejected

READER_VERSION = 1  # Bump whenever `read_episode` gives different episodes for the same input.
# Likewise for episodes with cameras; only rounds that read cameras have it in their settings,
# so the fingerprints of vector-only rounds stay what they were.
CAMERA_READER_VERSION = 1
INFO_PATH = 'meta/info.json'
LEGACY_EPISODES_PATH = 'meta/episodes.jsonl'  # v2.x
EPISODES_DIR = 'meta/episodes'  # v3.0
DATA_DIR = 'data'
# codebase_version -> layout: 2 (one parquet per episode) or 3 (several episodes per file).
CODEBASE_VERSIONS = {'v2.0': 2, 'v2.1': 2, 'v3.0': 3}
FRAME_INDEX = 'frame_index'
EPISODE_INDEX = 'episode_index'
TIMESTAMP = 'timestamp'
CAMERA_DTYPES = lerobot_cameras.CAMERA_DTYPES
# LeRobot's own `tolerance_s` default: a row's video frame must be this close to its timestamp.
TIMESTAMP_TOLERANCE_S = 1e-4
NUMERIC_KINDS = 'biuf'


@dataclasses.dataclass(frozen=True)
class LeRobotColumns:
  """Which LeRobot features the reader maps to what; recorders differ, so each is settable.

  observations: vector features concatenated, in this order, into the observation.
  action: the executed action (the human's during a takeover).
  intervention: 1/True where the human is in control; '' reads the dataset as demonstrations
    (no flags). A name the dataset does not have rejects its episodes (a typo must not silently
    turn takeovers into demonstrations).
  policy_action: what the policy proposed; used when the dataset has it, '' never.
  done: the episode-end flag (see the module docstring); '' reads every episode as truncated.
  images: camera features (dtype image or video) read into the observation as uint8 images;
    None: every camera in meta/info.json; (): none (the observation stays a flat vector).
  timestamp_tolerance_s: how close (strictly) a video frame's time must be to a row's
    timestamp to be that row's frame (LeRobot's `tolerance_s`, 1e-4 s by default).
  """
  observations: tuple[str, ...] = ('observation.state',)
  action: str = 'action'
  intervention: str = 'complementary_info.is_intervention'
  policy_action: str = 'complementary_info.policy_action'
  done: str = 'next.done'
  images: Optional[tuple[str, ...]] = None
  timestamp_tolerance_s: float = TIMESTAMP_TOLERANCE_S

  def __post_init__(self):
    observations = tuple(self.observations)
    if not observations or not all(observations):
      raise ValueError(f'LeRobot observation columns must be non-empty names, got {observations}')
    object.__setattr__(self, 'observations', observations)
    if self.images is not None:
      images = tuple(self.images)
      if not all(images) or len(set(images)) != len(images):
        raise ValueError(f'LeRobot image columns must be distinct non-empty names, got {images}')
      object.__setattr__(self, 'images', images)
    if not self.timestamp_tolerance_s > 0:
      raise ValueError('the LeRobot timestamp tolerance must be > 0 s, got '
                       f'{self.timestamp_tolerance_s}')

  def settings(self, cameras: bool = False) -> dict:
    """What goes into a round's settings (and so its fingerprint); the camera settings only
    when the round reads cameras (`cameras`), so vector-only rounds keep their fingerprints."""
    settings = dict(dataclasses.asdict(self), observations=list(self.observations),
                    reader_version=READER_VERSION)
    del settings['images'], settings['timestamp_tolerance_s']
    if cameras:
      settings.update(images=None if self.images is None else list(self.images),
                      timestamp_tolerance_s=self.timestamp_tolerance_s,
                      camera_reader_version=CAMERA_READER_VERSION)
    return settings


@dataclasses.dataclass(frozen=True)
class VideoFile:
  """Where one camera's frames of one episode are."""
  camera: str  # the feature, e.g. 'observation.images.front'
  path: str  # relative to the dataset root
  from_timestamp: float = 0.0  # the episode's start in the file (v3.0: meta/episodes; v2.x: 0)


@dataclasses.dataclass(frozen=True)
class EpisodeRef:
  """One episode as the dataset's metadata lists it: all a worker needs to read it."""
  root: str
  info: dict  # meta/info.json
  episode_index: int
  length: Optional[int]  # frames, as meta/episodes says
  tasks: tuple[str, ...]
  data_file: str  # relative to root
  video_files: tuple[VideoFile, ...] = ()  # every video camera's, read or not

  @property
  def name(self) -> str:
    return dataset_name(self.root)

  @property
  def episode_id(self) -> str:
    return episode_id(self.name, self.episode_index)

  @property
  def source(self) -> str:
    return f'{self.name}/{self.data_file}'


def dataset_name(root: str) -> str:
  return raw_format.source_name(root)


def episode_id(name: str, episode_index: int) -> str:
  """The one place that names a LeRobot episode: stable and path-free."""
  return f'{name}-ep{episode_index:06d}'


# ----------------------------------------------------------------------------- file access


def _join(root: str, relative: str) -> str:
  return posixpath.join(root, relative) if '://' in root else os.path.join(root, relative)


def _exists(path: str) -> bool:
  if '://' in path:
    import tensorflow as tf  # Only remote paths pay for the TF import.
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def _files_under(root: str, directory: str) -> list[str]:
  """Paths (relative to `root`) of every file under `root/directory`, sorted."""
  top = _join(root, directory)
  if '://' in root:
    import tensorflow as tf
    walk = tf.io.gfile.walk(top) if tf.io.gfile.isdir(top) else []
  else:
    walk = os.walk(top)
  found = []
  for folder, _, names in walk:
    for name in names:
      found.append(posixpath.relpath(_join(folder, name).replace(os.sep, '/'),
                                     root.replace(os.sep, '/')))
  return sorted(found)


def _parquet(path: str) -> pq.ParquetFile:
  if '://' in path:
    import tensorflow as tf
    return pq.ParquetFile(tf.io.gfile.GFile(path, 'rb'))
  return pq.ParquetFile(path)


def is_dataset_root(path: str) -> bool:
  """A folder holding `meta/info.json`: what `--input` may name instead of raw log files."""
  return _exists(_join(path.rstrip('/'), INFO_PATH))


def fingerprint_paths(root: str, columns: Optional[LeRobotColumns] = None) -> list[str]:
  """The files whose bytes decide what the reader produces: everything under `meta/` and
  `data/`, and the video files of the cameras read (`columns`; those of other cameras are
  not read, and are left out)."""
  root = root.rstrip('/')
  paths = _files_under(root, 'meta') + _files_under(root, DATA_DIR)
  read = cameras_read(root, columns or LeRobotColumns())
  try:
    refs = list_episodes(root) if read else []
  except Rejected:  # The job rejects the dataset itself.
    refs = []
  paths += sorted({v.path for ref in refs for v in ref.video_files
                   if v.camera in read and _exists(_join(root, v.path))})
  return [_join(root, p) for p in paths]


def cameras_read(root: str, columns: LeRobotColumns) -> set[str]:
  """The camera features `columns` reads from the dataset at `root`; empty when its
  metadata is unusable (the job rejects it then) or names unknown cameras (its episodes are
  rejected)."""
  try:
    features = read_info(root.rstrip('/'))['features']
    return {c.key for c in lerobot_cameras.plan(features, columns.images, _rejection)}
  except (Rejected, OSError):
    return set()


def _rejection(reason: str, detail: str) -> Rejected:
  """A `Rejected` without a source, for checks of the metadata alone."""
  return Rejected(reason, detail, '')


# ----------------------------------------------------------------------------- metadata


def _dataset_rejected(root: str, reason: str, detail: str, where: str = INFO_PATH) -> Rejected:
  """A dataset-wide problem: its episodes cannot even be listed (so none is counted)."""
  return Rejected(reason, detail, f'{dataset_name(root)}/{where}', unit=rejection.FILE,
                  counts_as_episode=False)


def read_info(root: str) -> dict:
  """meta/info.json, checked for what the reader relies on."""
  def reject(reason, detail):
    return _dataset_rejected(root, reason, detail)
  try:
    info = json.loads(raw_format.read_bytes(_join(root, INFO_PATH)))
  except OSError as e:
    raise reject(rejection.UNREADABLE_FILE, f'cannot read {INFO_PATH}: {e}')
  except ValueError as e:
    raise reject(rejection.INVALID_METADATA, f'{INFO_PATH} is not valid JSON: {e}')
  if not isinstance(info, dict):
    raise reject(rejection.INVALID_METADATA, f'{INFO_PATH} must hold a JSON object')
  version = info.get('codebase_version')
  if version not in CODEBASE_VERSIONS:
    raise reject(rejection.UNKNOWN_CODEBASE_VERSION,
                 f'codebase_version {version!r} is not one this reader knows '
                 f'({", ".join(CODEBASE_VERSIONS)}); convert the dataset with a lerobot release '
                 'that writes one of them')
  features = info.get('features')
  if not isinstance(features, dict) or not all(
      isinstance(f, dict) and isinstance(f.get('dtype'), str) and isinstance(f.get('shape'), list)
      for f in features.values()):
    raise reject(rejection.INVALID_METADATA,
                 f'{INFO_PATH} has no `features` object of {{"dtype", "shape"}} entries')
  if not isinstance(info.get('data_path'), str):
    raise reject(rejection.INVALID_METADATA, f'{INFO_PATH} has no string `data_path` template')
  if CODEBASE_VERSIONS[version] == 2 and not (isinstance(info.get('chunks_size'), int)
                                              and info['chunks_size'] > 0):
    raise reject(rejection.INVALID_METADATA,
                 f'{INFO_PATH} has no positive integer `chunks_size` ({version} needs it to find '
                 'episode files)')
  return info


def video_keys(info: dict) -> list[str]:
  return [key for key, f in info['features'].items() if f['dtype'] == 'video']


def _episode_rows_v2(root: str) -> list[dict]:
  """meta/episodes.jsonl: one JSON object per episode."""
  try:
    text = raw_format.read_bytes(_join(root, LEGACY_EPISODES_PATH)).decode('utf-8')
  except OSError as e:
    raise _dataset_rejected(root, rejection.INVALID_METADATA,
                            f'cannot read {LEGACY_EPISODES_PATH}: {e}', LEGACY_EPISODES_PATH)
  rows = []
  for number, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError as e:
      row = e
    if not isinstance(row, dict) or not isinstance(row.get(EPISODE_INDEX), int):
      raise _dataset_rejected(root, rejection.INVALID_METADATA,
                              f'line {number} is not an episode record with an integer '
                              f'`episode_index`: {line[:200]!r}', LEGACY_EPISODES_PATH)
    rows.append(row)
  return rows


def _episode_rows_v3(root: str, info: dict) -> list[dict]:
  """meta/episodes/chunk-XXX/file-XXX.parquet: one row per episode (only the columns used)."""
  wanted = [EPISODE_INDEX, 'length', 'tasks', 'data/chunk_index', 'data/file_index']
  for key in video_keys(info):
    wanted += [f'videos/{key}/chunk_index', f'videos/{key}/file_index',
               f'videos/{key}/from_timestamp']
  files = [p for p in _files_under(root, EPISODES_DIR) if p.endswith('.parquet')]
  if not files:
    raise _dataset_rejected(root, rejection.INVALID_METADATA,
                            f'{EPISODES_DIR}/ holds no parquet file (was the dataset finalized?)',
                            EPISODES_DIR)
  rows = []
  for relative in files:
    try:
      parquet = _parquet(_join(root, relative))
      missing = [c for c in wanted if c not in parquet.schema_arrow.names]
      if missing:
        raise _dataset_rejected(root, rejection.INVALID_METADATA,
                                f'columns {missing} are missing', relative)
      rows += parquet.read(columns=wanted).to_pylist()
    except Rejected:
      raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ...
      raise _dataset_rejected(root, rejection.UNREADABLE_FILE, f'unreadable parquet: {e}',
                              relative)
  return rows


def list_episodes(root: str) -> list[EpisodeRef]:
  """The episodes that the dataset's metadata lists, in episode order; raises `Rejected` (not
  counted as an episode) when the metadata itself is unusable."""
  root = root.rstrip('/')
  info = read_info(root)
  layout = CODEBASE_VERSIONS[info['codebase_version']]
  rows = _episode_rows_v2(root) if layout == 2 else _episode_rows_v3(root, info)
  refs, seen = [], set()
  for row in rows:
    index = row[EPISODE_INDEX]
    if index in seen:
      raise _dataset_rejected(root, rejection.INVALID_METADATA,
                              f'episode {index} is listed twice in the episode metadata',
                              LEGACY_EPISODES_PATH if layout == 2 else EPISODES_DIR)
    seen.add(index)
    try:
      if layout == 2:
        chunk = index // info['chunks_size']
        data_file = info['data_path'].format(episode_chunk=chunk, episode_index=index)
        videos = tuple(VideoFile(key, info['video_path'].format(
            episode_chunk=chunk, video_key=key, episode_index=index)) for key in video_keys(info))
      else:
        data_file = info['data_path'].format(chunk_index=row['data/chunk_index'],
                                             file_index=row['data/file_index'])
        videos = tuple(VideoFile(key, info['video_path'].format(
            video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
            file_index=row[f'videos/{key}/file_index']),
            float(row[f'videos/{key}/from_timestamp'])) for key in video_keys(info))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
      raise _dataset_rejected(root, rejection.INVALID_METADATA,
                              f'cannot locate the files of episode {index} from the path '
                              f'templates ({e!r})')
    tasks = row.get('tasks') or ()
    refs.append(EpisodeRef(root=root, info=info, episode_index=int(index),
                           length=row.get('length'), tasks=tuple(str(t) for t in tasks),
                           data_file=data_file, video_files=videos))
  return sorted(refs, key=lambda ref: ref.episode_index)


def missing_video_files(refs: Iterable[EpisodeRef],
                        columns: Optional[LeRobotColumns] = None) -> list[Rejected]:
  """One record per video file of a camera that is not read (`columns`) that the metadata
  references but that does not exist. These records do not reject the episodes (they do not
  count as episodes); a missing video of a camera that is read rejects its episodes instead
  (`read_episode`)."""
  columns = columns or LeRobotColumns()
  episodes: dict[tuple[str, str, str], list[int]] = {}
  read: dict[str, set[str]] = {}
  for ref in refs:
    if ref.root not in read:
      read[ref.root] = cameras_read(ref.root, columns)
    for video in ref.video_files:
      if video.camera not in read[ref.root]:
        episodes.setdefault((ref.root, video.camera, video.path), []).append(ref.episode_index)
  records = []
  for (root, key, relative), indices in sorted(episodes.items()):
    if not _exists(_join(root, relative)):
      records.append(Rejected(
          rejection.MISSING_VIDEO_FILE,
          f'the video of camera `{key}` for episode(s) {indices} does not exist; that camera '
          'is not read by this conversion (--lerobot_image_columns), so those episodes are '
          'still written without it',
          f'{dataset_name(root)}/{relative}', unit=rejection.FILE, counts_as_episode=False))
  return records


def dims(root: str, columns: LeRobotColumns) -> tuple[sc.ObservationSpec, int]:
  """(observation spec, action_dim) the dataset gives under `columns`, from meta/info.json:
  the observation dimension D, or the fields of a dict observation when cameras are read."""
  features = read_info(root.rstrip('/'))['features']
  width = lambda name: int(np.prod(features[name]['shape']))
  cameras = lerobot_cameras.plan(features, columns.images, _rejection)
  state_dim = sum(width(c) for c in columns.observations)
  return lerobot_cameras.observation_spec(state_dim, cameras), width(columns.action)


# ----------------------------------------------------------------------------- one episode


def episode_from_frames(observations: np.ndarray, actions: np.ndarray,
                        interventions: Optional[np.ndarray], policy_actions: Optional[np.ndarray],
                        done: Optional[np.ndarray], metadata: dict, source: str) -> RawEpisode:
  """The transition rule of the module docstring, on one episode's frames in frame order.

  Every array has one row per frame (T rows); `observations` is one [T, D] array or a dict of
  [T, ...] arrays (images uint8, vectors float32); `done` is [T] bool or None. Assumes T >= 2
  and that only the last frame may be done (`read_episode` checks both).
  """
  return RawEpisode(
      observations=(observations if isinstance(observations, dict)
                    else observations.astype(np.float32, copy=False)),
      actions=actions[:-1].astype(np.float32, copy=False),
      interventions=None if interventions is None else interventions.astype(bool),
      policy_actions=(None if policy_actions is None
                      else policy_actions[:-1].astype(np.float32, copy=False)),
      terminated=bool(done is not None and done[-1]),
      metadata=metadata,
      source=source)


@dataclasses.dataclass(frozen=True)
class _Column:
  role: str  # what the column is read as, for messages
  name: str
  feature: dict  # its entry in meta/info.json


def _columns_to_read(ref: EpisodeRef, columns: LeRobotColumns) -> dict[str, list[_Column]]:
  """{role: columns} that this episode's vectors are read from; rejects names the dataset
  does not have and features that are not flat numeric vectors."""
  features = ref.info['features']
  def reject(reason, detail):
    return Rejected(reason, detail, ref.source, episode_id=ref.episode_id)

  def column(role, name, width=None):
    if name not in features:
      hint = (" (pass --lerobot_intervention_column='' to read the dataset as demonstrations)"
              if role == 'intervention' else '')
      raise reject(rejection.MISSING_FIELD,
                   f'meta/info.json has no feature `{name}` (read as the {role}){hint}; it has '
                   f'{sorted(features)}')
    feature = features[name]
    if feature['dtype'] in CAMERA_DTYPES:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'`{name}` is a camera feature (dtype {feature["dtype"]}), named as the '
                   f'{role}; cameras are read with --lerobot_image_columns (all by default)')
    try:
      numeric = np.dtype(feature['dtype']).kind in NUMERIC_KINDS
    except TypeError:
      numeric = False
    if not numeric or len(feature['shape']) != 1:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'`{name}` has dtype {feature["dtype"]} and shape {feature["shape"]}; the '
                   f'{role} must be a flat numeric vector')
    if width is not None and feature['shape'] != [width]:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'`{name}` has shape {feature["shape"]}; the {role} must be one value per '
                   'frame')
    return _Column(role, name, feature)

  plan = {'observation': [column('observation', name) for name in columns.observations],
          'action': [column('action', columns.action)]}
  if columns.intervention:
    plan['intervention'] = [column('intervention', columns.intervention, width=1)]
  if columns.policy_action and columns.policy_action in features:
    plan['policy_action'] = [column('policy action', columns.policy_action)]
  if columns.done and columns.done in features:
    plan['done'] = [column('done flag', columns.done, width=1)]
  return plan


def _rows_of_episode(parquet: pq.ParquetFile, names: list[str], index: int) -> pa.Table:
  """The rows of episode `index`, reading only row groups whose statistics may hold it."""
  metadata = parquet.metadata
  paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
  position = paths.index(EPISODE_INDEX)
  parts = []
  for group in range(metadata.num_row_groups):
    stats = metadata.row_group(group).column(position).statistics
    if stats is not None and stats.has_min_max and not stats.min <= index <= stats.max:
      continue
    table = parquet.read_row_group(group, columns=names)
    parts.append(table.filter(pc.equal(table[EPISODE_INDEX], index)))
  if not parts:
    return parquet.schema_arrow.empty_table().select(names)
  return pa.concat_tables(parts)


def _expected_arrow_type(dtype: str) -> pa.DataType:
  return pa.bool_() if dtype == 'bool' else pa.from_numpy_dtype(np.dtype(dtype))


def _matrix(table: pa.Table, column: _Column, ref: EpisodeRef) -> np.ndarray:
  """[rows, width] numpy values of `column`, after checking its parquet type against
  meta/info.json (dtype and shape) and that no value is null."""
  def reject(reason, detail):
    return Rejected(reason, f'column `{column.name}` ({column.role}) in {ref.data_file}: {detail}',
                    ref.source, episode_id=ref.episode_id)

  array = table[column.name].combine_chunks()
  kind = array.type
  dtype, width = column.feature['dtype'], column.feature['shape'][0]
  if pa.types.is_fixed_size_list(kind):
    value_type, widths, values = kind.value_type, {kind.list_size}, array.flatten()
  elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
    value_type, values = kind.value_type, array.flatten()
    widths = set(pc.unique(pc.list_value_length(array)).drop_null().to_pylist())
  else:
    value_type, widths, values = kind, {1}, array
  if value_type != _expected_arrow_type(dtype):
    raise reject(rejection.FEATURE_MISMATCH,
                 f'holds {value_type} values; meta/info.json says dtype {dtype}')
  if len(array) and widths != {width}:
    raise reject(rejection.FEATURE_MISMATCH,
                 f'holds vectors of length {sorted(widths)}; meta/info.json says shape [{width}]')
  if array.null_count or values.null_count:
    nulls = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))
    where = f'first at row {nulls[0]} of the episode' if len(nulls) else 'inside vectors'
    raise reject(rejection.INVALID_RECORD, f'holds null values ({where})')
  return values.to_numpy(zero_copy_only=False).reshape(len(array), width)


def _check_frames(frames: np.ndarray, ref: EpisodeRef) -> None:
  """`frame_index`, sorted, must be exactly 0..T-1 and match the length meta/episodes lists."""
  def reject(reason, detail):
    return Rejected(reason, f'episode {ref.episode_index} in {ref.data_file}: {detail}',
                    ref.source, episode_id=ref.episode_id)
  repeated = frames[1:][frames[1:] == frames[:-1]]
  if repeated.size:
    raise reject(rejection.DUPLICATE_FRAME,
                 f'frame_index {int(repeated[0])} appears '
                 f'{int((frames == repeated[0]).sum())} times ({frames.size} rows)')
  expected = max(int(frames[-1]) + 1, ref.length or 0)
  missing = np.setdiff1d(np.arange(expected), frames)
  if missing.size or frames[0] < 0:
    shown = ', '.join(map(str, missing[:10])) + (' ...' if missing.size > 10 else '')
    listed = f'; meta/episodes lists {ref.length} frames' if ref.length is not None else ''
    raise reject(rejection.STEP_GAP,
                 f'frames missing: {shown} (have {frames.size} rows, frame_index '
                 f'{int(frames[0])}..{int(frames[-1])}{listed})')
  if ref.length is not None and frames.size != ref.length:
    raise reject(rejection.STEP_GAP,
                 f'{frames.size} frames in the data, but meta/episodes lists {ref.length}')


def read_episode(ref: EpisodeRef, columns: LeRobotColumns = LeRobotColumns()) -> RawEpisode:
  """Reads, checks and converts one episode (see the module docstring); raises `Rejected`."""
  def reject(reason, detail):
    return Rejected(reason, detail, ref.source, episode_id=ref.episode_id)

  plan = _columns_to_read(ref, columns)
  cameras = lerobot_cameras.plan(ref.info['features'], columns.images, reject)
  path = _join(ref.root, ref.data_file)
  if not _exists(path):
    raise reject(rejection.EPISODE_MISSING_FROM_DATA,
                 f'episode {ref.episode_index} is listed in the metadata, but its data file '
                 f'{ref.data_file} does not exist')
  names = [FRAME_INDEX, EPISODE_INDEX] + [c.name for cs in plan.values() for c in cs]
  names += [c.key for c in cameras if c.storage == lerobot_cameras.IMAGE]
  if any(c.storage == lerobot_cameras.VIDEO for c in cameras):
    names.append(TIMESTAMP)
  names = list(dict.fromkeys(names))
  try:
    parquet = _parquet(path)
    present = set(parquet.schema_arrow.names)
    missing = [name for name in names if name not in present]
    if missing:
      raise reject(rejection.MISSING_FIELD,
                   f'{ref.data_file} has no column(s) {missing} (meta/info.json lists them)'
                   if all(n in ref.info['features'] for n in missing) else
                   f'{ref.data_file} has no column(s) {missing}')
    table = _rows_of_episode(parquet, names, ref.episode_index)
  except Rejected:
    raise
  except Exception as e:  # ArrowInvalid, OSError, ... : the file is damaged.
    raise reject(rejection.UNREADABLE_FILE, f'{ref.data_file} is not a readable parquet file: '
                 f'{type(e).__name__}: {e}')
  if table.num_rows == 0:
    raise reject(rejection.EPISODE_MISSING_FROM_DATA,
                 f'episode {ref.episode_index} is listed in the metadata, but {ref.data_file} '
                 'holds no row of it')

  frame_column = _matrix(table, _Column('frame index', FRAME_INDEX,
                                        ref.info['features'].get(FRAME_INDEX) or
                                        {'dtype': 'int64', 'shape': [1]}), ref)[:, 0]
  order = np.argsort(frame_column, kind='stable')
  frames = frame_column[order]
  _check_frames(frames, ref)
  T = frames.size
  if T < 2:
    raise reject(rejection.EMPTY_EPISODE,
                 f'episode {ref.episode_index} has {T} frame(s); a transition needs two')

  values = {role: [_matrix(table, c, ref)[order] for c in cs] for role, cs in plan.items()}
  # Frames whose values are used: the last frame's action and policy action are not.
  used_rows = {'observation': T, 'action': T - 1, 'policy_action': T - 1, 'intervention': T,
               'done': T}
  for role, cs in plan.items():
    for c, matrix in zip(cs, values[role]):
      if matrix.dtype.kind != 'f':
        continue
      bad = ~np.isfinite(matrix[:used_rows[role]])
      if bad.any():
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        raise reject(rejection.NON_FINITE,
                     f'column `{c.name}` ({c.role}) holds {int(bad.sum())} NaN/inf values, '
                     f'first at frame {first} of episode {ref.episode_index} in {ref.data_file}')

  interventions = None
  if 'intervention' in values:
    flags = values['intervention'][0][:, 0]
    odd = np.flatnonzero((flags != 0) & (flags != 1))
    if odd.size:
      raise reject(rejection.INVALID_RECORD,
                   f'column `{columns.intervention}` must be 0/1 (or bool); frame {odd[0]} of '
                   f'episode {ref.episode_index} holds {flags[odd[0]]!r}')
    interventions = flags != 0
  done = None
  if 'done' in values:
    done = values['done'][0][:, 0] != 0
    early = np.flatnonzero(done[:-1])
    if early.size:
      raise reject(rejection.INVALID_RECORD,
                   f'`{columns.done}` is set on frame {early[0]} of episode '
                   f'{ref.episode_index}, but the episode goes on to frame {T - 1}')

  observations = np.concatenate(values['observation'], axis=1)
  if cameras:
    frames = _camera_frames(ref, cameras, table, order, columns.timestamp_tolerance_s, reject)
    observations = {lerobot_cameras.STATE_FIELD: observations.astype(np.float32, copy=False),
                    **frames}
  info = ref.info
  metadata = {
      'episode_id': ref.episode_id,
      'lerobot': {
          'dataset': ref.name,
          'episode_index': ref.episode_index,
          'codebase_version': info['codebase_version'],
          'fps': info.get('fps'),
          'robot_type': info.get('robot_type'),
          'frames': T,
          'tasks': list(ref.tasks),
          'observation_columns': list(columns.observations),
      },
  }
  if cameras:  # Vector-only episodes keep the metadata (and so the RLDS bytes) they had.
    metadata['lerobot']['cameras'] = {c.field: c.key for c in cameras}
  if len(ref.tasks) == 1:
    metadata['task'] = ref.tasks[0]
  return episode_from_frames(
      observations=observations,
      actions=values['action'][0],
      interventions=interventions,
      policy_actions=values['policy_action'][0] if 'policy_action' in values else None,
      done=done, metadata=metadata, source=ref.source)


def _camera_frames(ref: EpisodeRef, cameras: tuple[lerobot_cameras.Camera, ...], table: pa.Table,
                   order: np.ndarray, tolerance_s: float, reject) -> dict[str, np.ndarray]:
  """{field: [T, H, W, C] uint8} of each camera read, in frame order (`order` sorts the
  table's rows by frame_index, which runs 0..T-1)."""
  return {c.field: (_image_frames(ref, c, table, order, reject)
                    if c.storage == lerobot_cameras.IMAGE
                    else _video_frames(ref, c, table, order, tolerance_s, reject))
          for c in cameras}


def _image_frames(ref: EpisodeRef, camera: lerobot_cameras.Camera, table: pa.Table,
                  order: np.ndarray, reject) -> np.ndarray:
  column = table[camera.key].combine_chunks()
  if not pa.types.is_struct(column.type) or column.type.get_field_index('bytes') < 0:
    raise reject(rejection.FEATURE_MISMATCH,
                 f'column `{camera.key}` in {ref.data_file} holds {column.type}; an image '
                 'feature holds {bytes, path} structs')
  values = column.take(pa.array(order)).to_pylist()
  return lerobot_cameras.decode_images(
      values, camera, f'in episode {ref.episode_index} of {ref.data_file}', reject)


def _video_frames(ref: EpisodeRef, camera: lerobot_cameras.Camera, table: pa.Table,
                  order: np.ndarray, tolerance_s: float, reject) -> np.ndarray:
  """The frames of the episode's video nearest to its rows' `timestamp` + `from_timestamp`.
  Rejections name the video file as their source."""
  video = next((v for v in ref.video_files if v.camera == camera.key), None)
  if video is None:
    raise reject(rejection.INVALID_METADATA,
                 f'meta/info.json has no `video_path` for camera `{camera.key}`')

  def reject_video(reason, detail):
    return Rejected(reason, detail, f'{ref.name}/{video.path}', episode_id=ref.episode_id)

  path = _join(ref.root, video.path)
  if not _exists(path):
    raise reject_video(rejection.MISSING_VIDEO_FILE,
                       f'the video of camera `{camera.key}` for episode {ref.episode_index}, '
                       f'{video.path}, does not exist')
  feature = ref.info['features'].get(TIMESTAMP) or {'dtype': 'float32', 'shape': [1]}
  timestamps = _matrix(table, _Column('timestamp', TIMESTAMP, feature), ref)[order, 0]
  queries = video.from_timestamp + timestamps.astype(np.float64)
  source = path
  if '://' in path:
    import tensorflow as tf  # Only remote paths pay for the TF import.
    source = tf.io.gfile.GFile(path, 'rb')
  try:
    return lerobot_cameras.decode_video(source, queries, tolerance_s, camera,
                                        f'in episode {ref.episode_index}', reject_video)
  finally:
    if source is not path:
      source.close()
