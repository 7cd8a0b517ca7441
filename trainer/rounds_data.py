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
  episodes: int

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
  """A dataset on disk; `rounds()` re-reads its metadata, so new rounds appear as committed."""

  def __init__(self, data_dir: str, dataset: str):
    self.data_dir, self.name = data_dir, dataset
    self.version_dir = find_version_dir(data_dir, dataset)
    builder = self._builder()
    self._check_schema(builder.info.features)
    self.observation_dim, self.action_dim = sc.dims_of_features(builder.info.features)

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
    if sc.has_dict_observation(features):  # raw format v2
      observation, _ = sc.dims_of_features(features)
      raise DatasetError(
          f'{self.version_dir}: steps/{sc.OBSERVATION} is a dict '
          f'{sc.describe_observation(observation)}; '
          + ('image observations need the pixel learner (not yet available)'
             if any(f.is_image for f in observation) else
             'the learners take one flat vector observation (dict observations are not '
             'supported yet)'))
    for field in (sc.OBSERVATION, sc.ACTION):
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
    parts, episodes = [], 0
    if builder.info.splits[split].num_examples == 0:
      return RoundData(round_index, pairing.empty(self.observation_dim, self.action_dim), 0)
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
      for field in (sc.OBSERVATION, sc.ACTION, sc.DISCOUNT):
        if not np.isfinite(steps[field][:-1]).all():
          raise DatasetError(f'{self.version_dir}: round {round_index}, episode '
                             f'{episode_id.decode()}: {field} holds NaN/inf')
      parts.append(pairing.episode_transitions(steps))
      episodes += 1
    return RoundData(round_index, pairing.concatenate(parts), episodes)
