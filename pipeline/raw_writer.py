"""Writes episodes in raw log formats v1 and v2 (the collector's side of `raw_format`).

`observations` is a [T+1, D] array (v1) or a dict of named [T+1, ...] fields (v2): float vectors
[T+1, D] and uint8 images [T+1, H, W, C]. Step streams hold dict observations of vectors only
(images go to npz episodes; see `raw_format._observations`).
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from pipeline import raw_format


def npz_bytes(observations, actions, metadata: dict, interventions=None,
              policy_actions=None, terminated: Optional[bool] = None,
              expert_actions=None) -> bytes:
  arrays = {**_observation_arrays(observations),
            'actions': np.asarray(actions, np.float32),
            'metadata': np.array(json.dumps(metadata))}
  if interventions is not None:
    arrays['interventions'] = np.asarray(interventions, bool)
  if policy_actions is not None:
    arrays['policy_actions'] = np.asarray(policy_actions, np.float32)
  if expert_actions is not None:
    arrays['expert_actions'] = np.asarray(expert_actions, np.float32)
  if terminated is not None:
    arrays['terminated'] = np.array(bool(terminated))
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  return buffer.getvalue()


def _observation_arrays(observations) -> dict:
  if not isinstance(observations, dict):
    return {'observations': np.asarray(observations, np.float32)}
  arrays = {}
  for name, value in observations.items():
    value = np.asarray(value)
    is_image = value.dtype == np.uint8 and value.ndim != 2  # as raw_format reads it
    arrays[raw_format.OBSERVATION_FIELD_PREFIX + name] = (
        value if is_image else value.astype(np.float32))
  return arrays


def _step_observation(observations, t: int):
  if not isinstance(observations, dict):
    return np.asarray(observations[t], np.float32).tolist()
  fields = {}
  for name, value in observations.items():
    value = np.asarray(value[t])
    if value.ndim != 1:
      raise ValueError(f'observation field {name!r} has shape {value.shape} per step; step '
                       'streams hold vector fields only (write cameras as npz episodes)')
    fields[name] = value.astype(np.float32).tolist()
  return fields


def write_npz_episode(path: str, observations, actions, metadata: dict, **optional) -> None:
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(npz_bytes(observations, actions, metadata, **optional))


def step_records(observations, actions, metadata: dict, interventions=None,
                 policy_actions=None, terminated: Optional[bool] = None,
                 expert_actions=None) -> list[dict]:
  """One episode as step-stream records (the final record carries the final observation)."""
  episode_id = metadata['episode_id']
  T = len(actions)
  records = []
  for t in range(T + 1):
    record = {'episode_id': episode_id, 'step': t,
              'observation': _step_observation(observations, t)}
    if t < T:
      record['action'] = np.asarray(actions[t], np.float32).tolist()
      if policy_actions is not None:
        record['policy_action'] = np.asarray(policy_actions[t], np.float32).tolist()
      if expert_actions is not None:
        record['expert_action'] = np.asarray(expert_actions[t], np.float32).tolist()
    if interventions is not None and t < len(interventions):
      record['intervention'] = bool(interventions[t])
    elif interventions is not None:
      record['intervention'] = False
    if t == 0:
      record['metadata'] = metadata
    if t == T:
      record['is_last'] = True
      if terminated is not None:
        record['terminated'] = bool(terminated)
    records.append(record)
  return records


def write_step_stream(path: str, records: Iterable[dict]) -> None:
  text = ''.join(json.dumps(r) + '\n' for r in records).encode()
  if path.endswith('.gz'):
    text = gzip.compress(text)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(text)
