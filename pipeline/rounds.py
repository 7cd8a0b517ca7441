"""A dataset on disk as a sequence of rounds, appended atomically and idempotently.

Layout under `DIR/NAME/VERSION/`:
  dataset_info.json, features.json        TFDS metadata; dataset_info.json lists the committed
                                          rounds (splits `round_N`) and is the commit point
  NAME-round_N.tfrecord-XXXXX-of-YYYYY     the shards of round N
  rounds/round_N.json                     manifest: input fingerprint, job settings, report
  rounds/round_N.txt                      the report, human-readable
  rejected/round_N/                       dead letters of round N (records + copied files)
  .staging/                               work in progress; never read by TFDS

Appending round N writes only round N's files, then replaces dataset_info.json with a version that
adds split `round_N` (write to a temporary file, then rename). A crash anywhere before that rename
leaves the dataset exactly as it was; files of rounds < N are never opened for writing.

Several jobs may append to one dataset at once: each converts into its own staging folder, and
the commit (re-reading the committed rounds, moving files, writing the metadata) runs under the
dataset's commit lock (`commit_lock`), so every job's round lands; a job whose round was
committed by another job while it ran is told so (`RoundConflict`, or 'unchanged' for the same
input).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import uuid
from typing import Iterator, Optional

import tensorflow as tf

from pipeline import schema as sc

DATASET_VERSION = '1.0.0'
DATASET_INFO = 'dataset_info.json'
FEATURES = 'features.json'
LOCK = '.commit.lock'


class RoundConflict(Exception):
  """A round already exists with different input, and overwriting was not asked for."""


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
  output_dir: str
  name: str
  version: str = DATASET_VERSION

  @property
  def version_dir(self) -> str:
    return os.path.join(self.output_dir, self.name, self.version)

  def shard_pattern(self, round_index: int) -> str:
    return os.path.join(self.version_dir,
                        f'{self.name}-{sc.split_name(round_index)}.tfrecord-*')

  def shard_path(self, round_index: int, index: int, count: int) -> str:
    return os.path.join(self.version_dir, f'{self.name}-{sc.split_name(round_index)}.tfrecord-'
                        f'{index:05d}-of-{count:05d}')

  def manifest_path(self, round_index: int) -> str:
    return os.path.join(self.version_dir, 'rounds', f'{sc.split_name(round_index)}.json')

  def summary_path(self, round_index: int) -> str:
    return os.path.join(self.version_dir, 'rounds', f'{sc.split_name(round_index)}.txt')

  def rejected_dir(self, round_index: int) -> str:
    return os.path.join(self.version_dir, 'rejected', sc.split_name(round_index))

  def new_staging_dir(self, round_index: int) -> str:
    return os.path.join(self.version_dir, '.staging',
                        f'{sc.split_name(round_index)}-{uuid.uuid4().hex[:12]}')


def input_fingerprint(paths: list[str], settings: dict) -> str:
  """Content hash of a round's input: the files' bytes (not their names or locations) and the
  job settings that change the output (rule, version, takeover mode)."""
  digests = []
  for path in paths:
    h = hashlib.sha256()
    with tf.io.gfile.GFile(path, 'rb') as f:
      while chunk := f.read(1 << 22):
        h.update(chunk)
    digests.append(h.hexdigest())
  h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
  for digest in sorted(digests):
    h.update(digest.encode())
  return h.hexdigest()


def _load_builder(layout: DatasetLayout):
  import tensorflow_datasets as tfds
  if not tf.io.gfile.exists(os.path.join(layout.version_dir, DATASET_INFO)):
    return None
  return tfds.builder_from_directory(layout.version_dir)


def _splits(builder) -> dict:
  return {sc.round_of_split(name): info for name, info in builder.info.splits.items()}


def committed_rounds(layout: DatasetLayout) -> dict:
  """{round index: tfds SplitInfo} of the rounds readers can see."""
  builder = _load_builder(layout)
  return {} if builder is None else _splits(builder)


def dataset_schema(layout: DatasetLayout
                   ) -> tuple[Optional[tuple[sc.ObservationSpec, int]], bool]:
  """((observation spec, action_dim), whether steps have `expert_action`) of the dataset, from
  one read of its metadata; (None, True) for a dataset not created yet (it gets the current
  schema). Datasets created before `expert_action` existed give False."""
  builder = _load_builder(layout)
  if builder is None:
    return None, True
  features = builder.info.features
  return sc.dims_of_features(features), sc.has_expert_action(features)


def read_manifest(layout: DatasetLayout, round_index: int) -> Optional[dict]:
  path = layout.manifest_path(round_index)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def plan_round(layout: DatasetLayout, round_index: int, fingerprint: str,
               overwrite: bool) -> str:
  """'new', 'unchanged' (already written from this input) or 'overwrite'; raises RoundConflict
  when the round exists with other input and `overwrite` is False."""
  if round_index not in committed_rounds(layout):
    return 'new'
  manifest = read_manifest(layout, round_index) or {}
  if manifest.get('fingerprint') == fingerprint:
    return 'unchanged'
  if not overwrite:
    raise RoundConflict(
        f'{sc.split_name(round_index)} of {layout.version_dir} was written from different input '
        f'(fingerprint {manifest.get("fingerprint", "unknown")[:12]}, this input '
        f'{fingerprint[:12]}); rounds are append-only: pass --overwrite to replace it, or write '
        'the new data as a new round')
  return 'overwrite'


@contextlib.contextmanager
def commit_lock(layout: DatasetLayout, timeout: float = 600.0,
                settle_seconds: float = 2.0) -> Iterator[None]:
  """Holds the dataset's commit lock: one job at a time reads and rewrites its metadata.

  Local paths: an exclusive `fcntl.flock` on DIR/NAME/VERSION/.commit.lock, released by the
  kernel if the job dies. Other `tf.io.gfile` paths (object stores have no exclusive create or
  flock): a lease file holding a random token, taken when absent or older than `timeout`; after
  writing it the job waits `settle_seconds` and reads it back, and only the job whose token is
  still there proceeds. That is safe on stores with read-after-write consistency (GCS, S3) as
  long as no two jobs write the lease more than `settle_seconds` apart after both saw it absent;
  it is a lease, not a lock, so a commit must finish within `timeout`.
  """
  path = os.path.join(layout.version_dir, LOCK)
  tf.io.gfile.makedirs(layout.version_dir)
  deadline = time.monotonic() + timeout
  if '://' not in path:
    import fcntl
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
      while True:
        try:
          fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
          break
        except BlockingIOError:
          if time.monotonic() > deadline:
            raise TimeoutError(f'{path}: another job has held the commit lock for over '
                               f'{timeout:.0f} s') from None
          time.sleep(0.05)
      yield
    finally:
      os.close(fd)  # releases the flock
    return
  token = uuid.uuid4().hex
  while True:
    holder = None
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        holder = f.read().split()
      if holder and time.time() - float(holder[1]) > timeout:
        holder = None  # a stale lease of a job that died
    if holder is None:
      with tf.io.gfile.GFile(path, 'w') as f:
        f.write(f'{token} {time.time()}')
      time.sleep(settle_seconds)
      with tf.io.gfile.GFile(path) as f:
        if f.read().split()[0] == token:
          break
    if time.monotonic() > deadline:
      raise TimeoutError(f'{path}: the commit lease was held for over {timeout:.0f} s')
    time.sleep(settle_seconds)
  try:
    yield
  finally:
    tf.io.gfile.remove(path)


def write_metadata(layout: DatasetLayout, features, splits: dict) -> None:
  """Atomically replaces the TFDS metadata so that it lists exactly `splits`."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import dataset_info as dataset_info_lib
  from tensorflow_datasets.core import naming
  tmp = os.path.join(layout.version_dir, '.staging', f'metadata-{uuid.uuid4().hex[:12]}')
  tf.io.gfile.makedirs(tmp)
  info = dataset_info_lib.DatasetInfo(
      builder=dataset_info_lib.DatasetIdentity(
          name=layout.name, version=tfds.core.Version(layout.version),
          data_dir=layout.version_dir, module_name=''),
      features=features,
      description=('RLIF-relabeled intervention rounds; one split per round (round_N). '
                   'Per-round reports are in rounds/.'))
  info.set_file_format(tfds.core.FileFormat.TFRECORD)
  template = naming.ShardedFileTemplate(data_dir=layout.version_dir, dataset_name=layout.name,
                                        filetype_suffix='tfrecord')
  info.set_splits(tfds.core.SplitDict.from_proto(
      repeated_split_infos=[
          tfds.core.SplitInfo(name=sc.split_name(r), shard_lengths=list(s.shard_lengths),
                              num_bytes=s.num_bytes).to_proto()
          for r, s in sorted(splits.items())],
      filename_template=template))
  info.write_to_directory(tmp)
  if not tf.io.gfile.exists(os.path.join(layout.version_dir, FEATURES)):
    tf.io.gfile.rename(os.path.join(tmp, FEATURES), os.path.join(layout.version_dir, FEATURES))
  tf.io.gfile.rename(os.path.join(tmp, DATASET_INFO),
                     os.path.join(layout.version_dir, DATASET_INFO), overwrite=True)
  tf.io.gfile.rmtree(tmp)


def _delete_round_files(layout: DatasetLayout, round_index: int) -> None:
  for path in tf.io.gfile.glob(layout.shard_pattern(round_index)):
    tf.io.gfile.remove(path)


def commit_round(layout: DatasetLayout, round_index: int, staging_dir: str,
                 receipts: list[dict], dims: tuple[int, int], manifest: dict,
                 summary: str, expert_action: bool = True, overwrite: bool = False) -> str:
  """Publishes a staged round under the commit lock: shards, dead letters, manifest, then the
  metadata (commit point). Returns 'committed', or 'unchanged' when another job committed this
  round from the same input while this one ran (the staged files are discarded).

  Re-running after a crash at any point is safe: until the metadata names round N, its files
  are invisible to readers and are replaced here. The committed rounds are read again under the
  lock, so rounds other jobs committed meanwhile are kept; if one of them is this round, from
  other input, `RoundConflict` says so unless `overwrite`.
  """
  with commit_lock(layout):
    builder = _load_builder(layout)  # read again: other jobs may have committed meanwhile
    splits = {} if builder is None else _splits(builder)
    outcome = (None if builder is None else
               _outcome_of_concurrent_commits(layout, builder, splits, round_index, dims,
                                              manifest, overwrite))
    if outcome is not None:  # nothing of this job is written
      tf.io.gfile.rmtree(staging_dir)
      if isinstance(outcome, RoundConflict):
        raise outcome
      return outcome
    _commit_locked(layout, round_index, staging_dir, receipts, dims, manifest, summary,
                   expert_action, splits)
  return 'committed'


def _outcome_of_concurrent_commits(layout, builder, splits, round_index, dims, manifest,
                                   overwrite):
  """None when this job's round may be committed; 'unchanged' when another job committed it
  from the same input; a `RoundConflict` when the dataset or the round now disagrees."""
  existing = sc.dims_of_features(builder.info.features)
  if tuple(existing) != tuple(dims):
    return RoundConflict(
        f'{layout.version_dir} was created by another job while this one ran, with '
        f'observation/action dims {tuple(existing)}; this round has {tuple(dims)}')
  if round_index not in splits or overwrite:
    return None
  committed = (read_manifest(layout, round_index) or {}).get('fingerprint', 'unknown')
  if committed == manifest.get('fingerprint'):
    return 'unchanged'
  return RoundConflict(
      f'{sc.split_name(round_index)} of {layout.version_dir} was committed by another job '
      f'while this one ran, from different input (fingerprint {committed[:12]}, this input '
      f'{str(manifest.get("fingerprint"))[:12]}); nothing of this job was written: pass '
      '--overwrite to replace it, or write this data as a new round')


def _commit_locked(layout, round_index, staging_dir, receipts, dims, manifest, summary,
                   expert_action, splits) -> None:
  import tensorflow_datasets as tfds
  features = sc.make_features(*dims, expert_action=expert_action)
  if round_index in splits:  # Overwrite: hide the old round first, then replace its files.
    del splits[round_index]
    write_metadata(layout, features, splits)
  _delete_round_files(layout, round_index)

  shards = sorted({r['shard'] for r in receipts})
  lengths = {s: 0 for s in shards}
  num_bytes = 0
  for r in receipts:
    lengths[r['shard']] += 1
    num_bytes += r['num_bytes']
  for index, shard in enumerate(shards):
    tf.io.gfile.rename(os.path.join(staging_dir, shard),
                       layout.shard_path(round_index, index, len(shards)), overwrite=True)

  rejected = layout.rejected_dir(round_index)
  if tf.io.gfile.exists(rejected):
    tf.io.gfile.rmtree(rejected)
  staged_rejected = os.path.join(staging_dir, 'rejected')
  if tf.io.gfile.exists(staged_rejected):
    tf.io.gfile.makedirs(os.path.dirname(rejected))
    tf.io.gfile.rename(staged_rejected, rejected)

  tf.io.gfile.makedirs(os.path.dirname(layout.manifest_path(round_index)))
  for path, text in ((layout.manifest_path(round_index), json.dumps(manifest, indent=1)),
                     (layout.summary_path(round_index), summary)):
    with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
      f.write(text)
    tf.io.gfile.rename(path + '.tmp', path, overwrite=True)

  splits[round_index] = tfds.core.SplitInfo(
      name=sc.split_name(round_index), shard_lengths=[lengths[s] for s in shards],
      num_bytes=num_bytes)
  write_metadata(layout, features, splits)
  # The staging root stays: another job may be converting into it right now.
  tf.io.gfile.rmtree(staging_dir)
