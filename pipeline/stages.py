"""The job's stages as module-level functions over one element each.

Each stage takes an element and a `JobSpec` and yields outputs; rejected input is written to the
round's dead-letter folder inside the stage, so stages need no multi-output plumbing and run the
same under any Beam runner or in a plain Python loop (`run_plain`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from typing import Iterable, Iterator, Optional

from pipeline import dead_letters
from pipeline import examples
from pipeline import lerobot_format
from pipeline import raw_format
from pipeline import relabel as rl
from pipeline import rejection
from pipeline import schema as sc
from pipeline.raw_format import RawEpisode, StepRecord
from pipeline.rejection import Rejected
from pipeline.validate import validate_episode

RECEIPTS_FILE = 'receipts.jsonl'
SHARD_PREFIX = 'shard-'


@dataclasses.dataclass(frozen=True)
class InputFile:
  path: str
  kind: str  # 'npz', 'steps' or 'lerobot' (a LeRobot dataset root folder)

  @property
  def source(self) -> str:
    return raw_format.source_name(self.path)


@dataclasses.dataclass(frozen=True)
class JobSpec:
  """Everything a worker needs to convert and write one round (picklable, path-only)."""
  round_index: int
  dims: tuple  # (observation spec, action_dim): schema.ObservationSpec and an int
  takeover: str
  staging_dir: str
  max_shard_bytes: int = 256 << 20
  expert_action: bool = True  # the dataset's steps have `expert_action` (sc.make_features)
  lerobot: lerobot_format.LeRobotColumns = lerobot_format.LeRobotColumns()

  @property
  def rejected_dir(self) -> str:
    return os.path.join(self.staging_dir, 'rejected')


@dataclasses.dataclass(frozen=True)
class EncodedEpisode:
  key: str
  serialized: bytes
  rlds_steps: int
  stats: Optional[dict]  # Per input episode: set on segment 0 only.


def _dead_letter(rejected: Rejected, job: JobSpec) -> None:
  dead_letters.write(rejected, job.rejected_dir)


def read_npz(input_file: InputFile, job: JobSpec) -> Iterator[RawEpisode]:
  try:
    yield raw_format.parse_npz_episode(raw_format.read_bytes(input_file.path), input_file.source)
  except Rejected as r:
    _dead_letter(dataclasses.replace(r, source_path=input_file.path), job)
  except OSError as e:
    _dead_letter(Rejected(rejection.UNREADABLE_FILE, f'cannot read: {e}', input_file.source,
                          unit=rejection.FILE), job)


def read_step_records(input_file: InputFile, job: JobSpec) -> Iterator[tuple[str, StepRecord]]:
  """Yields (episode_id, record) for each good line; bad lines and damaged files go to dead
  letters (the lines before a gzip truncation are still used)."""
  try:
    data = raw_format.read_bytes(input_file.path)
    for line_number, line in raw_format.iter_lines(data, input_file.path):
      try:
        record = raw_format.parse_step_line(line, input_file.source, line_number)
      except Rejected as r:
        _dead_letter(r, job)
        continue
      if record is not None:
        yield record.episode_id, record
  except Rejected as r:
    _dead_letter(r, job)
  except OSError as e:
    _dead_letter(Rejected(rejection.UNREADABLE_FILE, f'cannot read: {e}', input_file.source,
                          unit=rejection.FILE, counts_as_episode=False), job)


def list_lerobot_episodes(input_file: InputFile,
                          job: JobSpec) -> Iterator[lerobot_format.EpisodeRef]:
  """The episodes a LeRobot dataset's metadata lists (cheap: reads meta/ only). A dataset whose
  metadata is unusable, and video files of unused cameras that are missing, go to dead
  letters."""
  try:
    refs = lerobot_format.list_episodes(input_file.path)
  except Rejected as r:
    _dead_letter(r, job)
    return
  except OSError as e:
    _dead_letter(Rejected(rejection.UNREADABLE_FILE, f'cannot read: {e}', input_file.source,
                          unit=rejection.FILE, counts_as_episode=False), job)
    return
  for r in lerobot_format.missing_video_files(refs, job.lerobot):
    _dead_letter(r, job)
  yield from refs


def read_lerobot_episode(ref: lerobot_format.EpisodeRef, job: JobSpec) -> Iterator[RawEpisode]:
  try:
    yield lerobot_format.read_episode(ref, job.lerobot)
  except Rejected as r:
    _dead_letter(r, job)
  except OSError as e:
    _dead_letter(Rejected(rejection.UNREADABLE_FILE, f'cannot read {ref.data_file}: {e}',
                          ref.source, episode_id=ref.episode_id), job)


def assemble(grouped: tuple[str, Iterable[StepRecord]], job: JobSpec) -> Iterator[RawEpisode]:
  episode_id, records = grouped
  try:
    yield raw_format.assemble_episode(episode_id, records)
  except Rejected as r:
    _dead_letter(r, job)


def relabeled_examples(raw: RawEpisode, job: JobSpec) -> Iterator[tuple[str, dict, Optional[dict]]]:
  """Validates and relabels one episode: yields (key, TFDS example dict, stats) per RLDS
  episode; stats (for the report) come with the first one only."""
  try:
    validate_episode(raw, job.dims, job.expert_action)
  except Rejected as r:
    _dead_letter(r, job)
    return
  takeover = rl.Takeover(job.takeover)
  for episode in rl.relabel(raw, takeover):
    yield (examples.episode_key(raw.episode_id, episode.segment),
           examples.to_example(raw, episode, job.round_index, takeover, job.expert_action),
           examples.episode_stats(raw, episode) if episode.segment == 0 else None)


def convert(raw: RawEpisode, job: JobSpec) -> Iterator[EncodedEpisode]:
  """`relabeled_examples`, serialized for the round's shards."""
  for key, example, stats in relabeled_examples(raw, job):
    yield EncodedEpisode(key=key, serialized=examples.serialize(example, job.dims,
                                                                job.expert_action),
                         rlds_steps=int(example['steps'][sc.IS_FIRST].shape[0]), stats=stats)


class ShardWriter:
  """Appends serialized episodes to TFRecord files in the staging folder, starting a new file
  past `max_shard_bytes`; returns one receipt per episode. Files get random names so that a
  retried bundle never collides with the one it replaces (only receipts that reach the driver
  count, so an abandoned attempt's file is never published)."""

  def __init__(self, job: JobSpec):
    self._job = job
    self._writer = None
    self._name = None
    self._bytes = 0

  def write(self, episode: EncodedEpisode) -> dict:
    import tensorflow as tf
    if self._writer is None or self._bytes >= self._job.max_shard_bytes:
      self.close()
      self._name = f'{SHARD_PREFIX}{uuid.uuid4().hex}.tfrecord'
      tf.io.gfile.makedirs(self._job.staging_dir)
      self._writer = tf.io.TFRecordWriter(os.path.join(self._job.staging_dir, self._name))
      self._bytes = 0
    self._writer.write(episode.serialized)
    self._bytes += len(episode.serialized)
    return {'shard': self._name, 'key': episode.key, 'num_bytes': len(episode.serialized),
            'rlds_steps': episode.rlds_steps, 'stats': episode.stats}

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def write_receipts(keyed_receipts: tuple[object, Iterable[dict]], job: JobSpec) -> None:
  """Writes every receipt of the round (small) to one file in the staging folder."""
  import tensorflow as tf
  _, receipts = keyed_receipts
  lines = sorted(json.dumps(r, sort_keys=True) for r in receipts)
  with tf.io.gfile.GFile(os.path.join(job.staging_dir, RECEIPTS_FILE), 'w') as f:
    f.write(''.join(line + '\n' for line in lines))


def read_receipts(staging_dir: str) -> list[dict]:
  import tensorflow as tf
  path = os.path.join(staging_dir, RECEIPTS_FILE)
  if not tf.io.gfile.exists(path):
    return []  # The job had no episode to write.
  with tf.io.gfile.GFile(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_plain(files: list[InputFile], job: JobSpec) -> None:
  """The whole job in one process, without Beam: same stages, same outputs."""
  writer = ShardWriter(job)
  receipts = []
  grouped: dict[str, list[StepRecord]] = {}
  for input_file in files:
    if input_file.kind == 'npz':
      for raw in read_npz(input_file, job):
        receipts.extend(writer.write(e) for e in convert(raw, job))
    elif input_file.kind == 'lerobot':
      for ref in list_lerobot_episodes(input_file, job):
        for raw in read_lerobot_episode(ref, job):
          receipts.extend(writer.write(e) for e in convert(raw, job))
    else:
      for episode_id, record in read_step_records(input_file, job):
        grouped.setdefault(episode_id, []).append(record)
  for item in grouped.items():
    for raw in assemble(item, job):
      receipts.extend(writer.write(e) for e in convert(raw, job))
  writer.close()
  if receipts:
    write_receipts((None, receipts), job)
