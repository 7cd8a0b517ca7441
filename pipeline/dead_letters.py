"""Writes rejected input where a person can inspect it: one JSON record per rejection, plus a
copy of every rejected file, in the round's `rejected/` folder."""

from __future__ import annotations

import hashlib
import json
import os

import tensorflow as tf

from pipeline.raw_format import read_bytes
from pipeline.rejection import Rejected

FILES_SUBDIR = 'files'


def write(rejected: Rejected, directory: str) -> str:
  """Writes `rejected` under `directory`; idempotent (the name is a hash of the content), so a
  retried bundle does not duplicate records. Returns the record's path."""
  record = rejected.to_record()
  text = json.dumps(record, sort_keys=True)
  name = hashlib.sha256(text.encode()).hexdigest()[:20]
  tf.io.gfile.makedirs(directory)
  if rejected.source_path:
    files_dir = os.path.join(directory, FILES_SUBDIR)
    tf.io.gfile.makedirs(files_dir)
    copy = os.path.join(files_dir, f'{name}-{os.path.basename(rejected.source_path)}')
    with tf.io.gfile.GFile(copy, 'wb') as f:
      f.write(read_bytes(rejected.source_path))
    record['copy'] = os.path.join(FILES_SUBDIR, os.path.basename(copy))
    text = json.dumps(record, sort_keys=True)
  path = os.path.join(directory, f'{name}.json')
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(text + '\n')
  return path


def read_all(directory: str) -> list[dict]:
  if not tf.io.gfile.isdir(directory):
    return []
  records = []
  for path in sorted(tf.io.gfile.glob(os.path.join(directory, '*.json'))):
    with tf.io.gfile.GFile(path) as f:
      records.append(json.loads(f.read()))
  return records
