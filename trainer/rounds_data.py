"""Reads the rounds of an RLIF dataset written by the pipeline and checks what the trainer
relies on, with errors that say what is wrong and where."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from pipeline import schema as sc
from trainer import pairing

REQUIRED_STEP_FIELDS = (sc.OBSERVATION, sc.ACTION, sc.REWARD, sc.DISCOUNT, sc.IS_FIRST,
                        sc.IS_LAST, sc.IS_TERMINAL, sc.IS_INTERVENTION)


class DatasetError(Exception):
  """The dataset is missing or does not hold what the trainer needs."""


@dataclasses.dataclass
class RoundData:
  round_index: int
  transitions: dict  # pairing.FIELDS -> arrays
  refused: dict  # the proposals its takeovers refused (pairing.refused_proposals), pairing.FIELDS
  # Transitions per episode, in order: `transitions` holds each episode's back to back.
  episode_sizes: np.ndarray

  @property
  def episodes(self) -> int:
    return len(self.episode_sizes)

  @property
  def intervention_rate(self) -> float:
    n = pairing.size(self.transitions)
    return float(self.transitions['is_intervention'].mean()) if n else 0.0


def find_version_dir(data_dir: str, dataset: str) -> str:
  """DIR/NAME/<latest version> holding dataset_info.json."""
  import tensorflow as tf
  root = os.path.join(data_dir, dataset)
  if not tf.io.gfile.isdir(root):
    raise DatasetError(f'no dataset {dataset!r} under {data_dir} (expected {root}/<version>/); '
                       'write a round with `python -m pipeline.main` first')
  versions = sorted((v.rstrip('/') for v in tf.io.gfile.listdir(root)
                     if tf.io.gfile.exists(os.path.join(root, v.rstrip('/'),
                                                        'dataset_info.json'))),
                    key=lambda v: tuple(int(x) for x in v.split('.') if x.isdigit()))
  if not versions:
    raise DatasetError(f'{root} holds no committed dataset version (no dataset_info.json)')
  return os.path.join(root, versions[-1])


class RlifDataset:
  """A dataset on disk; `rounds()` re-reads its metadata, so new rounds appear as committed.

  `observation_spec` is an int D (one flat float32 vector) or, for a dict observation (raw format
  v2), its sorted `pipeline.schema.ObservationField`s: uint8 camera images, which the learners
  encode (the pixel learner, trainer/encoder.py), and float32 vectors.
  """

  def __init__(self, data_dir: str, dataset: str):
    self.data_dir, self.name = data_dir, dataset
    self.version_dir = find_version_dir(data_dir, dataset)
    builder = self._builder()
    self._check_schema(builder.info.features)
    self.observation_spec, self.action_dim = sc.dims_of_features(builder.info.features)

  @property
  def observation_dim(self) -> sc.ObservationSpec:
    """The name callers used before dict observations: `observation_spec`."""
    return self.observation_spec

  def _builder(self):
    import tensorflow_datasets as tfds
    return tfds.builder_from_directory(self.version_dir)

  def _check_schema(self, features) -> None:
    if sc.STEPS not in features:
      raise DatasetError(f'{self.version_dir}: no `{sc.STEPS}` feature; not an RLDS dataset '
                         f'(features: {sorted(features.keys())})')
    steps = features[sc.STEPS].feature
    missing = [f for f in REQUIRED_STEP_FIELDS if f not in steps]
    if missing:
      raise DatasetError(f'{self.version_dir}: steps lack {missing}; the trainer needs '
                         f'{list(REQUIRED_STEP_FIELDS)} (write the data with pipeline.main)')
    fields = [sc.ACTION]
    if sc.has_dict_observation(features):  # raw format v2: the pixel learner encodes images
      observation, _ = sc.dims_of_features(features)
      dtypes = {f.name: steps[sc.OBSERVATION][f.name].np_dtype for f in observation}
      odd = [f for f in observation
             if not (f.is_image and dtypes[f.name] == np.uint8
                     or len(f.shape) == 1 and dtypes[f.name] == np.float32)]
      if odd:
        raise DatasetError(
            f'{self.version_dir}: steps/{sc.OBSERVATION} is a dict '
            f'{sc.describe_observation(observation)} whose fields {[f.name for f in odd]} are '
            'neither uint8 [H, W, C] images nor float32 vectors, the two kinds the learners take')
    else:
      fields.insert(0, sc.OBSERVATION)
    for field in fields:
      if len(steps[field].shape) != 1:
        raise DatasetError(f'{self.version_dir}: steps/{field} has shape {steps[field].shape}; '
                           'expected a flat vector')

  def rounds(self) -> list[int]:
    """Committed round indices, ascending."""
    names = list(self._builder().info.splits)
    rounds = []
    for name in names:
      try:
        rounds.append(sc.round_of_split(name))
      except ValueError:
        raise DatasetError(f'{self.version_dir}: split {name!r} is not a round (round_N)')
    return sorted(rounds)

  def load_round(self, round_index: int) -> RoundData:
    import tensorflow as tf
    import tensorflow_datasets as tfds
    builder = self._builder()
    split = sc.split_name(round_index)
    if split not in builder.info.splits:
      raise DatasetError(f'{self.version_dir}: round {round_index} is not committed (rounds: '
                         f'{self.rounds()})')
    parts, refused = [], []
    if builder.info.splits[split].num_examples == 0:
      none = pairing.empty(self.observation_spec, self.action_dim)
      return RoundData(round_index, none, none, np.zeros((0,), np.int64))
    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.map(lambda ep: (ep[sc.EPISODE_METADATA][sc.EPISODE_ID],
                            tf.data.Dataset.get_single_element(ep[sc.STEPS].batch(1 << 20))),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for episode_id, steps in tfds.as_numpy(ds):
      rewards = steps[sc.REWARD]
      if not np.isfinite(rewards).all():
        raise DatasetError(f'{self.version_dir}: round {round_index}, episode '
                           f'{episode_id.decode()}: reward holds NaN/inf at steps '
                           f'{np.flatnonzero(~np.isfinite(rewards)).tolist()[:10]}')
      for field, values in _checked_for_finite(steps):
        if not np.isfinite(values[:-1]).all():
          raise DatasetError(f'{self.version_dir}: round {round_index}, episode '
                             f'{episode_id.decode()}: {field} holds NaN/inf')
      parts.append(pairing.episode_transitions(steps))
      refused.append(pairing.refused_proposals(steps))
    return RoundData(round_index, pairing.concatenate(parts), pairing.concatenate(refused),
                     np.array([pairing.size(part) for part in parts], np.int64))


def _checked_for_finite(steps: dict) -> list:
  """(name, values) of the step fields that must be finite: observation (a dict observation's
  vector fields; uint8 images always are), action and discount."""
  observation = steps[sc.OBSERVATION]
  if isinstance(observation, dict):
    fields = [(f'{sc.OBSERVATION}/{name}', value) for name, value in sorted(observation.items())
              if value.dtype != np.uint8]
  else:
    fields = [(sc.OBSERVATION, observation)]
  return fields + [(sc.ACTION, steps[sc.ACTION]), (sc.DISCOUNT, steps[sc.DISCOUNT])]
